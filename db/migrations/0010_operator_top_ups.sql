CREATE TABLE "operator_api_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"scope" text NOT NULL,
	"secret_hash" text NOT NULL,
	"secret_prefix" text NOT NULL,
	"created_by" text,
	"created_at" timestamp with time zone NOT NULL,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "operator_api_keys_scope_check" CHECK ("operator_api_keys"."scope" in ('read_only','billing','full'))
);
--> statement-breakpoint
CREATE TABLE "operator_audit_log" (
	"id" text PRIMARY KEY NOT NULL,
	"seq" bigserial NOT NULL,
	"actor" text NOT NULL,
	"operator_key_id" text,
	"action" text NOT NULL,
	"target_type" text NOT NULL,
	"target_id" text NOT NULL,
	"partner_id" text,
	"reason" text,
	"request_id" text,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "operator_audit_log_actor_check" CHECK ("operator_audit_log"."actor" in ('operator_key','cli','system')),
	CONSTRAINT "operator_audit_log_actor_key_check" CHECK (("operator_audit_log"."actor" = 'operator_key') = ("operator_audit_log"."operator_key_id" is not null))
);
--> statement-breakpoint
CREATE TABLE "bank_statement_lines" (
	"id" text PRIMARY KEY NOT NULL,
	"statement_id" text NOT NULL,
	"account_iban" text NOT NULL,
	"entry_reference" text NOT NULL,
	"credit_debit" text NOT NULL,
	"amount_cents" bigint NOT NULL,
	"currency" text NOT NULL,
	"booking_date" date,
	"value_date" date,
	"remittance_information" text,
	"debtor_name" text,
	"debtor_iban" text,
	"status" text NOT NULL,
	"mismatch_reason" text,
	"top_up_id" text,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "bank_statement_lines_status_check" CHECK ("bank_statement_lines"."status" in ('matched','unmatched','ignored')),
	CONSTRAINT "bank_statement_lines_cd_check" CHECK ("bank_statement_lines"."credit_debit" in ('credit','debit')),
	CONSTRAINT "bank_statement_lines_amount_check" CHECK ("bank_statement_lines"."amount_cents" > 0),
	CONSTRAINT "bank_statement_lines_matched_check" CHECK (("bank_statement_lines"."status" = 'matched') = ("bank_statement_lines"."top_up_id" is not null and "bank_statement_lines"."mismatch_reason" is null))
);
--> statement-breakpoint
CREATE TABLE "bank_statements" (
	"id" text PRIMARY KEY NOT NULL,
	"message_id" text NOT NULL,
	"statement_ids" text[] NOT NULL,
	"account_iban" text,
	"sha256" text NOT NULL,
	"entries" bigint NOT NULL,
	"imported_by" text,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "top_ups" (
	"id" text PRIMARY KEY NOT NULL,
	"partner_id" text NOT NULL,
	"amount_cents" bigint NOT NULL,
	"currency" text DEFAULT 'EUR' NOT NULL,
	"method" text NOT NULL,
	"status" text NOT NULL,
	"payment_reference" text NOT NULL,
	"partner_reference" text,
	"description" text,
	"expires_at" timestamp with time zone NOT NULL,
	"credited_at" timestamp with time zone,
	"ledger_entry_id" text,
	"failed_at" timestamp with time zone,
	"failure_reason" text,
	"expired_at" timestamp with time zone,
	"refunded_cents" bigint DEFAULT 0 NOT NULL,
	"request_id" text,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "top_ups_amount_check" CHECK ("top_ups"."amount_cents" > 0),
	CONSTRAINT "top_ups_status_check" CHECK ("top_ups"."status" in ('pending','credited','failed','expired')),
	CONSTRAINT "top_ups_method_check" CHECK ("top_ups"."method" in ('bank_transfer')),
	CONSTRAINT "top_ups_credited_check" CHECK (("top_ups"."status" = 'credited') = ("top_ups"."ledger_entry_id" is not null and "top_ups"."credited_at" is not null)),
	CONSTRAINT "top_ups_refunded_check" CHECK ("top_ups"."refunded_cents" >= 0 and "top_ups"."refunded_cents" <= "top_ups"."amount_cents" and ("top_ups"."refunded_cents" = 0 or "top_ups"."status" = 'credited'))
);
--> statement-breakpoint
ALTER TABLE "credit_ledger_entries" DROP CONSTRAINT "credit_ledger_kind_check";--> statement-breakpoint
ALTER TABLE "credit_ledger_entries" DROP CONSTRAINT "credit_ledger_sign_check";--> statement-breakpoint
ALTER TABLE "partners" ADD COLUMN "status" text DEFAULT 'active' NOT NULL;--> statement-breakpoint
ALTER TABLE "partners" ADD COLUMN "suspended_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "partners" ADD COLUMN "suspension_reason" text;--> statement-breakpoint
ALTER TABLE "operator_audit_log" ADD CONSTRAINT "operator_audit_log_operator_key_id_operator_api_keys_id_fk" FOREIGN KEY ("operator_key_id") REFERENCES "public"."operator_api_keys"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bank_statement_lines" ADD CONSTRAINT "bank_statement_lines_statement_id_bank_statements_id_fk" FOREIGN KEY ("statement_id") REFERENCES "public"."bank_statements"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bank_statement_lines" ADD CONSTRAINT "bank_statement_lines_top_up_id_top_ups_id_fk" FOREIGN KEY ("top_up_id") REFERENCES "public"."top_ups"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bank_statements" ADD CONSTRAINT "bank_statements_imported_by_operator_api_keys_id_fk" FOREIGN KEY ("imported_by") REFERENCES "public"."operator_api_keys"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "top_ups" ADD CONSTRAINT "top_ups_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "top_ups" ADD CONSTRAINT "top_ups_ledger_entry_id_credit_ledger_entries_id_fk" FOREIGN KEY ("ledger_entry_id") REFERENCES "public"."credit_ledger_entries"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "operator_api_keys_secret_hash_key" ON "operator_api_keys" USING btree ("secret_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "operator_audit_log_seq_key" ON "operator_audit_log" USING btree ("seq");--> statement-breakpoint
CREATE INDEX "operator_audit_log_action_idx" ON "operator_audit_log" USING btree ("action","seq");--> statement-breakpoint
CREATE INDEX "operator_audit_log_target_idx" ON "operator_audit_log" USING btree ("target_id","seq");--> statement-breakpoint
CREATE INDEX "operator_audit_log_partner_idx" ON "operator_audit_log" USING btree ("partner_id","seq");--> statement-breakpoint
CREATE INDEX "operator_audit_log_key_idx" ON "operator_audit_log" USING btree ("operator_key_id","seq");--> statement-breakpoint
CREATE UNIQUE INDEX "bank_statement_lines_entry_key" ON "bank_statement_lines" USING btree ("account_iban","entry_reference");--> statement-breakpoint
CREATE UNIQUE INDEX "bank_statement_lines_top_up_key" ON "bank_statement_lines" USING btree ("top_up_id") WHERE "bank_statement_lines"."status" = 'matched';--> statement-breakpoint
CREATE INDEX "bank_statement_lines_status_idx" ON "bank_statement_lines" USING btree ("status","id");--> statement-breakpoint
CREATE INDEX "bank_statements_created_idx" ON "bank_statements" USING btree ("created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "top_ups_payment_reference_key" ON "top_ups" USING btree ("payment_reference");--> statement-breakpoint
CREATE UNIQUE INDEX "top_ups_ledger_entry_key" ON "top_ups" USING btree ("ledger_entry_id");--> statement-breakpoint
CREATE INDEX "top_ups_partner_idx" ON "top_ups" USING btree ("partner_id","id");--> statement-breakpoint
CREATE INDEX "top_ups_status_idx" ON "top_ups" USING btree ("status","expires_at");--> statement-breakpoint
ALTER TABLE "partners" ADD CONSTRAINT "partners_status_check" CHECK ("partners"."status" in ('active','suspended'));--> statement-breakpoint
ALTER TABLE "partners" ADD CONSTRAINT "partners_suspension_check" CHECK (("partners"."status" = 'suspended') = ("partners"."suspended_at" is not null));--> statement-breakpoint
ALTER TABLE "credit_ledger_entries" ADD CONSTRAINT "credit_ledger_kind_check" CHECK ("credit_ledger_entries"."kind" in ('top_up','charge','refund','adjustment','adjustment_credit','adjustment_debit','top_up_refund'));--> statement-breakpoint
ALTER TABLE "credit_ledger_entries" ADD CONSTRAINT "credit_ledger_sign_check" CHECK (("credit_ledger_entries"."kind" in ('top_up','refund','adjustment_credit') and "credit_ledger_entries"."amount_cents" > 0) or ("credit_ledger_entries"."kind" in ('charge','adjustment_debit','top_up_refund') and "credit_ledger_entries"."amount_cents" < 0) or "credit_ledger_entries"."kind" = 'adjustment');