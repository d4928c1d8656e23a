-- Custom SQL migration file, put your code below! --
-- HAND-WRITTEN (issue 12, operator price lists): what drizzle-kit cannot express. Keep this file whole when
-- migrations are regenerated at merge.
-- A price list version is what partners were charged by: it is never changed or removed (a new version replaces
-- it from its effective date on). The same rule as operator_audit_log in 0011.
CREATE FUNCTION price_list_versions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'price_list_versions is append-only (% refused)', TG_OP USING ERRCODE = 'restrict_violation';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER price_list_versions_append_only
  BEFORE UPDATE OR DELETE ON price_list_versions
  FOR EACH ROW EXECUTE FUNCTION price_list_versions_append_only();
--> statement-breakpoint
CREATE TRIGGER price_list_versions_no_truncate
  BEFORE TRUNCATE ON price_list_versions
  FOR EACH STATEMENT EXECUTE FUNCTION price_list_versions_append_only();
