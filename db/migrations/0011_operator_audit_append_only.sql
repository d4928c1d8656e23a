-- Custom SQL migration file, put your code below! --
-- HAND-WRITTEN (issue 12, operator): what drizzle-kit cannot express. Keep this file whole when migrations are
-- regenerated at merge.
-- 1. The operator audit trail is evidence of who did what to partners' money and accounts: rows are never
--    changed or removed (the same rule as credit_ledger_entries in 0001).
CREATE FUNCTION operator_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'operator_audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'restrict_violation';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER operator_audit_log_append_only
  BEFORE UPDATE OR DELETE ON operator_audit_log
  FOR EACH ROW EXECUTE FUNCTION operator_audit_log_append_only();
--> statement-breakpoint
CREATE TRIGGER operator_audit_log_no_truncate
  BEFORE TRUNCATE ON operator_audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION operator_audit_log_append_only();
--> statement-breakpoint
-- 2. A credited top-up stays credited: its ledger entry and credit time can never be changed or cleared, and it
--    can never go back to another status (the ledger entry it points to is append-only already).
CREATE FUNCTION top_ups_credited_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'credited' AND (NEW.status <> 'credited' OR NEW.ledger_entry_id IS DISTINCT FROM OLD.ledger_entry_id
      OR NEW.credited_at IS DISTINCT FROM OLD.credited_at OR NEW.amount_cents <> OLD.amount_cents) THEN
    RAISE EXCEPTION 'top-up % is credited: its status, amount and ledger entry are final', OLD.id USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER top_ups_credited_is_final
  BEFORE UPDATE ON top_ups
  FOR EACH ROW EXECUTE FUNCTION top_ups_credited_is_final();
