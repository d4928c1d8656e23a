CREATE TABLE "identity_documents" (
	"id" text PRIMARY KEY NOT NULL,
	"partner_id" text NOT NULL,
	"customer_id" text NOT NULL,
	"document_type" text NOT NULL,
	"number" text NOT NULL,
	"issuer" text NOT NULL,
	"issued_on" date,
	"expires_on" date NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "identity_documents_dates_check" CHECK ("identity_documents"."issued_on" is null or "identity_documents"."issued_on" <= "identity_documents"."expires_on")
);
--> statement-breakpoint
CREATE TABLE "domains" (
	"id" text PRIMARY KEY NOT NULL,
	"partner_id" text NOT NULL,
	"customer_id" text NOT NULL,
	"name" text NOT NULL,
	"unicode_name" text NOT NULL,
	"level" integer NOT NULL,
	"status" text NOT NULL,
	"verification_token" text NOT NULL,
	"last_check" jsonb,
	"last_checked_at" timestamp with time zone,
	"certified_at" timestamp with time zone,
	"degraded_at" timestamp with time zone,
	"decertified_at" timestamp with time zone,
	"withdrawn_at" timestamp with time zone,
	"cancel_at" timestamp with time zone,
	"cancelled_at" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "domains_level_check" CHECK ("domains"."level" in (2, 3)),
	CONSTRAINT "domains_status_check" CHECK ("domains"."status" in ('pending_verification','certified','degraded','decertified','withdrawn','cancelled'))
);
--> statement-breakpoint
CREATE TABLE "mailbox_notices" (
	"id" text PRIMARY KEY NOT NULL,
	"partner_id" text NOT NULL,
	"mailbox_id" text NOT NULL,
	"kind" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "mailboxes" (
	"id" text PRIMARY KEY NOT NULL,
	"partner_id" text NOT NULL,
	"customer_id" text NOT NULL,
	"domain_id" text,
	"domain_name" text NOT NULL,
	"local_part" text NOT NULL,
	"address" text NOT NULL,
	"plan" text NOT NULL,
	"plan_at_renewal" text,
	"term_years" integer NOT NULL,
	"renewal_mode" text NOT NULL,
	"status" text NOT NULL,
	"suspension_reason" text,
	"password_hash" text NOT NULL,
	"password_changed_at" timestamp with time zone NOT NULL,
	"inbox_quota_bytes" bigint NOT NULL,
	"archive_quota_bytes" bigint NOT NULL,
	"extra_inbox_bytes" bigint DEFAULT 0 NOT NULL,
	"extra_archive_bytes" bigint DEFAULT 0 NOT NULL,
	"used_inbox_bytes" bigint DEFAULT 0 NOT NULL,
	"used_archive_bytes" bigint DEFAULT 0 NOT NULL,
	"included_delegates" integer NOT NULL,
	"requested_at" timestamp with time zone NOT NULL,
	"activated_at" timestamp with time zone,
	"expires_at" timestamp with time zone,
	"suspended_at" timestamp with time zone,
	"expired_at" timestamp with time zone,
	"cancel_at" timestamp with time zone,
	"cancelled_at" timestamp with time zone,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "mailboxes_term_check" CHECK ("mailboxes"."term_years" between 1 and 5),
	CONSTRAINT "mailboxes_address_check" CHECK ("mailboxes"."address" = "mailboxes"."local_part" || '@' || "mailboxes"."domain_name"),
	CONSTRAINT "mailboxes_active_dates_check" CHECK ("mailboxes"."status" in ('pending_identification', 'cancelled') or ("mailboxes"."activated_at" is not null and "mailboxes"."expires_at" is not null)),
	CONSTRAINT "mailboxes_suspension_check" CHECK (("mailboxes"."status" = 'suspended') = ("mailboxes"."suspension_reason" is not null)),
	CONSTRAINT "mailboxes_usage_check" CHECK ("mailboxes"."used_inbox_bytes" >= 0 and "mailboxes"."used_archive_bytes" >= 0)
);
--> statement-breakpoint
CREATE TABLE "scheduled_tasks" (
	"name" text PRIMARY KEY NOT NULL,
	"next_run_at" timestamp with time zone NOT NULL,
	"last_started_at" timestamp with time zone,
	"last_finished_at" timestamp with time zone,
	"last_error" text
);
--> statement-breakpoint
ALTER TABLE "identity_documents" ADD CONSTRAINT "identity_documents_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "identity_documents" ADD CONSTRAINT "identity_documents_customer_id_customers_id_fk" FOREIGN KEY ("customer_id") REFERENCES "public"."customers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "domains" ADD CONSTRAINT "domains_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "domains" ADD CONSTRAINT "domains_customer_id_customers_id_fk" FOREIGN KEY ("customer_id") REFERENCES "public"."customers"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mailbox_notices" ADD CONSTRAINT "mailbox_notices_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mailbox_notices" ADD CONSTRAINT "mailbox_notices_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mailboxes" ADD CONSTRAINT "mailboxes_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mailboxes" ADD CONSTRAINT "mailboxes_customer_id_customers_id_fk" FOREIGN KEY ("customer_id") REFERENCES "public"."customers"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mailboxes" ADD CONSTRAINT "mailboxes_domain_id_domains_id_fk" FOREIGN KEY ("domain_id") REFERENCES "public"."domains"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "identity_documents_customer_idx" ON "identity_documents" USING btree ("customer_id","id");--> statement-breakpoint
CREATE INDEX "domains_partner_idx" ON "domains" USING btree ("partner_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "domains_certified_name_key" ON "domains" USING btree ("name") WHERE "domains"."status" in ('certified', 'degraded');--> statement-breakpoint
CREATE UNIQUE INDEX "domains_pending_name_key" ON "domains" USING btree ("partner_id","name") WHERE "domains"."status" = 'pending_verification';--> statement-breakpoint
CREATE UNIQUE INDEX "mailbox_notices_once_key" ON "mailbox_notices" USING btree ("mailbox_id","kind","expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "mailboxes_address_key" ON "mailboxes" USING btree ("address");--> statement-breakpoint
CREATE INDEX "mailboxes_partner_idx" ON "mailboxes" USING btree ("partner_id","id");--> statement-breakpoint
CREATE INDEX "mailboxes_customer_idx" ON "mailboxes" USING btree ("customer_id");--> statement-breakpoint
CREATE INDEX "mailboxes_domain_idx" ON "mailboxes" USING btree ("domain_id");--> statement-breakpoint
CREATE INDEX "mailboxes_expires_idx" ON "mailboxes" USING btree ("expires_at");