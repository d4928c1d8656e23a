-- Custom SQL migration file, put your code below! --
-- Invoices are fiscal documents: once issued they are never changed or removed (a correction is a credit note).
CREATE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'invoices are immutable (% refused)', TG_OP USING ERRCODE = 'restrict_violation';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER invoices_immutable
  BEFORE UPDATE OR DELETE ON invoices
  FOR EACH ROW EXECUTE FUNCTION invoices_immutable();
--> statement-breakpoint
-- Numbering without gaps: a year's counter only ever moves up by one and is never removed, and an invoice can
-- only take the number its year's counter holds (in the same transaction), so numbers are dense and unique.
CREATE FUNCTION invoice_counters_step() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'invoice_counters rows are never deleted' USING ERRCODE = 'restrict_violation';
  END IF;
  IF NEW.year <> OLD.year OR NEW.last_number <> OLD.last_number + 1 THEN
    RAISE EXCEPTION 'invoice counter % can only move from % to %', OLD.year, OLD.last_number, OLD.last_number + 1
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER invoice_counters_step
  BEFORE UPDATE OR DELETE ON invoice_counters
  FOR EACH ROW EXECUTE FUNCTION invoice_counters_step();
--> statement-breakpoint
CREATE FUNCTION invoice_counters_first() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.last_number <> 1 THEN
    RAISE EXCEPTION 'a new invoicing year starts at 1, not %', NEW.last_number USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER invoice_counters_first
  BEFORE INSERT ON invoice_counters
  FOR EACH ROW EXECUTE FUNCTION invoice_counters_first();
--> statement-breakpoint
CREATE FUNCTION invoices_take_counter() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  current_number integer;
BEGIN
  SELECT last_number INTO current_number FROM invoice_counters WHERE year = NEW.year;
  IF current_number IS DISTINCT FROM NEW.sequence THEN
    RAISE EXCEPTION 'invoice % must take its year''s counter (%)', NEW.number, current_number USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER invoices_take_counter
  BEFORE INSERT ON invoices
  FOR EACH ROW EXECUTE FUNCTION invoices_take_counter();
