CREATE TABLE "brandings" (
	"customer_id" text PRIMARY KEY NOT NULL,
	"partner_id" text NOT NULL,
	"slug" text NOT NULL,
	"colors" jsonb NOT NULL,
	"texts" jsonb NOT NULL,
	"logo" "bytea",
	"logo_content_type" text,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "delegate_accounts" (
	"id" text PRIMARY KEY NOT NULL,
	"email" text NOT NULL,
	"password_hash" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "delegations" (
	"id" text PRIMARY KEY NOT NULL,
	"partner_id" text NOT NULL,
	"mailbox_id" text NOT NULL,
	"email" text NOT NULL,
	"name" text,
	"mode" text NOT NULL,
	"status" text NOT NULL,
	"invite_token_hash" text,
	"invite_expires_at" timestamp with time zone NOT NULL,
	"account_id" text,
	"accepted_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "mailbox_addons" (
	"id" text PRIMARY KEY NOT NULL,
	"partner_id" text NOT NULL,
	"mailbox_id" text NOT NULL,
	"kind" text NOT NULL,
	"quantity" integer NOT NULL,
	"status" text NOT NULL,
	"cancel_at_renewal" boolean DEFAULT false NOT NULL,
	"starts_at" timestamp with time zone,
	"cancelled_at" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "mailbox_addons_quantity_check" CHECK ("mailbox_addons"."quantity" >= 1)
);
--> statement-breakpoint
CREATE TABLE "newsletter_campaigns" (
	"id" text PRIMARY KEY NOT NULL,
	"mailbox_id" text NOT NULL,
	"list_id" text NOT NULL,
	"subject" text NOT NULL,
	"html" text NOT NULL,
	"text" text NOT NULL,
	"status" text NOT NULL,
	"scheduled_at" timestamp with time zone,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "newsletter_contacts" (
	"id" text PRIMARY KEY NOT NULL,
	"mailbox_id" text NOT NULL,
	"email" text NOT NULL,
	"name" text,
	"consent" boolean NOT NULL,
	"unsubscribe_token" text NOT NULL,
	"unsubscribed_at" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "newsletter_deliveries" (
	"campaign_id" text NOT NULL,
	"contact_id" text NOT NULL,
	"email" text NOT NULL,
	"status" text NOT NULL,
	"smtp_response" text,
	"attempts" integer DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "newsletter_deliveries_campaign_id_contact_id_pk" PRIMARY KEY("campaign_id","contact_id")
);
--> statement-breakpoint
CREATE TABLE "newsletter_list_members" (
	"list_id" text NOT NULL,
	"contact_id" text NOT NULL,
	CONSTRAINT "newsletter_list_members_list_id_contact_id_pk" PRIMARY KEY("list_id","contact_id")
);
--> statement-breakpoint
CREATE TABLE "newsletter_lists" (
	"id" text PRIMARY KEY NOT NULL,
	"mailbox_id" text NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "supervised_mailboxes" (
	"supervisor_id" text NOT NULL,
	"mailbox_id" text NOT NULL,
	"status" text NOT NULL,
	"invite_token_hash" text,
	"invite_expires_at" timestamp with time zone,
	"added_at" timestamp with time zone NOT NULL,
	"accepted_at" timestamp with time zone,
	"removed_at" timestamp with time zone,
	CONSTRAINT "supervised_mailboxes_supervisor_id_mailbox_id_pk" PRIMARY KEY("supervisor_id","mailbox_id")
);
--> statement-breakpoint
CREATE TABLE "supervisor_sign_ins" (
	"jti" text PRIMARY KEY NOT NULL,
	"supervisor_id" text NOT NULL,
	"mailbox_id" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "supervisors" (
	"id" text PRIMARY KEY NOT NULL,
	"partner_id" text NOT NULL,
	"mailbox_id" text NOT NULL,
	"name" text NOT NULL,
	"email" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "pec_transactions" ADD COLUMN "delegation_id" text;--> statement-breakpoint
ALTER TABLE "brandings" ADD CONSTRAINT "brandings_customer_id_customers_id_fk" FOREIGN KEY ("customer_id") REFERENCES "public"."customers"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "brandings" ADD CONSTRAINT "brandings_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "delegations" ADD CONSTRAINT "delegations_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "delegations" ADD CONSTRAINT "delegations_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "delegations" ADD CONSTRAINT "delegations_account_id_delegate_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."delegate_accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mailbox_addons" ADD CONSTRAINT "mailbox_addons_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mailbox_addons" ADD CONSTRAINT "mailbox_addons_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "newsletter_campaigns" ADD CONSTRAINT "newsletter_campaigns_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "newsletter_campaigns" ADD CONSTRAINT "newsletter_campaigns_list_id_newsletter_lists_id_fk" FOREIGN KEY ("list_id") REFERENCES "public"."newsletter_lists"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "newsletter_contacts" ADD CONSTRAINT "newsletter_contacts_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "newsletter_deliveries" ADD CONSTRAINT "newsletter_deliveries_campaign_id_newsletter_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."newsletter_campaigns"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "newsletter_deliveries" ADD CONSTRAINT "newsletter_deliveries_contact_id_newsletter_contacts_id_fk" FOREIGN KEY ("contact_id") REFERENCES "public"."newsletter_contacts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "newsletter_list_members" ADD CONSTRAINT "newsletter_list_members_list_id_newsletter_lists_id_fk" FOREIGN KEY ("list_id") REFERENCES "public"."newsletter_lists"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "newsletter_list_members" ADD CONSTRAINT "newsletter_list_members_contact_id_newsletter_contacts_id_fk" FOREIGN KEY ("contact_id") REFERENCES "public"."newsletter_contacts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "newsletter_lists" ADD CONSTRAINT "newsletter_lists_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "supervised_mailboxes" ADD CONSTRAINT "supervised_mailboxes_supervisor_id_supervisors_id_fk" FOREIGN KEY ("supervisor_id") REFERENCES "public"."supervisors"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "supervised_mailboxes" ADD CONSTRAINT "supervised_mailboxes_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "supervisor_sign_ins" ADD CONSTRAINT "supervisor_sign_ins_supervisor_id_supervisors_id_fk" FOREIGN KEY ("supervisor_id") REFERENCES "public"."supervisors"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "supervisor_sign_ins" ADD CONSTRAINT "supervisor_sign_ins_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "supervisors" ADD CONSTRAINT "supervisors_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "supervisors" ADD CONSTRAINT "supervisors_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "brandings_slug_key" ON "brandings" USING btree ("slug");--> statement-breakpoint
CREATE UNIQUE INDEX "delegate_accounts_email_key" ON "delegate_accounts" USING btree ("email");--> statement-breakpoint
CREATE INDEX "delegations_mailbox_idx" ON "delegations" USING btree ("mailbox_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "delegations_live_key" ON "delegations" USING btree ("mailbox_id","email") WHERE "delegations"."status" in ('invited', 'active');--> statement-breakpoint
CREATE UNIQUE INDEX "delegations_token_key" ON "delegations" USING btree ("invite_token_hash");--> statement-breakpoint
CREATE INDEX "mailbox_addons_mailbox_idx" ON "mailbox_addons" USING btree ("mailbox_id","id");--> statement-breakpoint
CREATE INDEX "mailbox_addons_partner_idx" ON "mailbox_addons" USING btree ("partner_id","id");--> statement-breakpoint
CREATE INDEX "newsletter_campaigns_mailbox_idx" ON "newsletter_campaigns" USING btree ("mailbox_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "newsletter_contacts_email_key" ON "newsletter_contacts" USING btree ("mailbox_id","email");--> statement-breakpoint
CREATE UNIQUE INDEX "newsletter_contacts_unsubscribe_key" ON "newsletter_contacts" USING btree ("unsubscribe_token");--> statement-breakpoint
CREATE INDEX "newsletter_deliveries_status_idx" ON "newsletter_deliveries" USING btree ("campaign_id","status");--> statement-breakpoint
CREATE UNIQUE INDEX "newsletter_lists_name_key" ON "newsletter_lists" USING btree ("mailbox_id","name");--> statement-breakpoint
CREATE UNIQUE INDEX "supervised_mailboxes_token_key" ON "supervised_mailboxes" USING btree ("invite_token_hash");--> statement-breakpoint
CREATE INDEX "supervisors_partner_idx" ON "supervisors" USING btree ("partner_id","id");