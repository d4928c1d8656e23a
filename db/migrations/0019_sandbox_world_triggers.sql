-- A domain's or a mailbox's world is its partner's, always: copied at insert whatever the INSERT says, and never
-- changed afterwards. Global names (certified domains, mailbox addresses) are unique per world on that copy.
CREATE FUNCTION partner_world_copy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SELECT livemode INTO NEW.livemode FROM partners WHERE id = NEW.partner_id;
  IF NEW.livemode IS NULL THEN
    RAISE EXCEPTION 'unknown partner %', NEW.partner_id USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE FUNCTION partner_world_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.livemode IS DISTINCT FROM OLD.livemode OR NEW.partner_id IS DISTINCT FROM OLD.partner_id THEN
    RAISE EXCEPTION '% %: its partner and world never change', TG_TABLE_NAME, OLD.id USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER domains_world_copy BEFORE INSERT ON domains FOR EACH ROW EXECUTE FUNCTION partner_world_copy();
--> statement-breakpoint
CREATE TRIGGER domains_world_fixed BEFORE UPDATE ON domains FOR EACH ROW EXECUTE FUNCTION partner_world_fixed();
--> statement-breakpoint
CREATE TRIGGER mailboxes_world_copy BEFORE INSERT ON mailboxes FOR EACH ROW EXECUTE FUNCTION partner_world_copy();
--> statement-breakpoint
CREATE TRIGGER mailboxes_world_fixed BEFORE UPDATE ON mailboxes FOR EACH ROW EXECUTE FUNCTION partner_world_fixed();
--> statement-breakpoint
-- A test twin belongs to a live partner, and a partner's world never changes.
CREATE FUNCTION partners_world_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND (NEW.livemode IS DISTINCT FROM OLD.livemode OR NEW.live_partner_id IS DISTINCT FROM OLD.live_partner_id) THEN
    RAISE EXCEPTION 'partner %: its world never changes', OLD.id USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.live_partner_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM partners WHERE id = NEW.live_partner_id AND livemode) THEN
    RAISE EXCEPTION 'partner %: a test twin belongs to a live partner', NEW.id USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER partners_world_check BEFORE INSERT OR UPDATE ON partners FOR EACH ROW EXECUTE FUNCTION partners_world_check();
