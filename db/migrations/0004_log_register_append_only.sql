-- Custom SQL migration file, put your code below! --
-- The log register has the legal value of the receipts: entries are never changed, and removed only by the
-- retention purge (30 months), which announces itself with SET LOCAL pec.log_register_purge = 'on'.
CREATE FUNCTION log_register_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('pec.log_register_purge', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'log_register is append-only (% refused)', TG_OP USING ERRCODE = 'restrict_violation';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER log_register_guard
  BEFORE UPDATE OR DELETE ON log_register
  FOR EACH ROW EXECUTE FUNCTION log_register_guard();
--> statement-breakpoint
INSERT INTO log_register_head (id, last_seq, last_hash, anchor_hash)
  VALUES (1, 0, repeat('0', 64), repeat('0', 64));
