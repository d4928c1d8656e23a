CREATE TABLE "log_register" (
	"seq" bigserial PRIMARY KEY NOT NULL,
	"occurred_at" timestamp with time zone NOT NULL,
	"event" text NOT NULL,
	"message_id" text NOT NULL,
	"related_message_ids" text[] NOT NULL,
	"sender" text NOT NULL,
	"recipients" text[] NOT NULL,
	"subject" text NOT NULL,
	"provider" text NOT NULL,
	"mailbox_id" text,
	"partner_id" text,
	"details" jsonb NOT NULL,
	"prev_hash" text NOT NULL,
	"hash" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "log_register_head" (
	"id" integer PRIMARY KEY NOT NULL,
	"last_seq" bigint NOT NULL,
	"last_hash" text NOT NULL,
	"anchor_hash" text NOT NULL,
	CONSTRAINT "log_register_head_single" CHECK ("log_register_head"."id" = 1)
);
--> statement-breakpoint
CREATE TABLE "mailbox_messages" (
	"id" text PRIMARY KEY NOT NULL,
	"mailbox_id" text,
	"folder" text NOT NULL,
	"kind" text NOT NULL,
	"message_id" text NOT NULL,
	"pec_message_id" text,
	"subject" text NOT NULL,
	"from_address" text NOT NULL,
	"size_bytes" integer NOT NULL,
	"seen" boolean DEFAULT false NOT NULL,
	"content" "bytea" NOT NULL,
	"dedupe_key" text NOT NULL,
	"stored_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "pec_jobs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"payload" jsonb NOT NULL,
	"dedupe_key" text NOT NULL,
	"run_at" timestamp with time zone NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"locked_until" timestamp with time zone,
	"last_error" text,
	"done_at" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "pec_recipients" (
	"transaction_id" text NOT NULL,
	"address" text NOT NULL,
	"role" text NOT NULL,
	"certified" boolean NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"taken_in_charge_at" timestamp with time zone,
	"delivered_at" timestamp with time zone,
	"failed_at" timestamp with time zone,
	"error_code" text,
	"error_detail" text,
	"delay_warned_at" timestamp with time zone,
	"timed_out_at" timestamp with time zone,
	CONSTRAINT "pec_recipients_transaction_id_address_pk" PRIMARY KEY("transaction_id","address")
);
--> statement-breakpoint
CREATE TABLE "pec_transactions" (
	"id" text PRIMARY KEY NOT NULL,
	"partner_id" text NOT NULL,
	"mailbox_id" text NOT NULL,
	"pec_message_id" text NOT NULL,
	"original_message_id" text,
	"sender" text NOT NULL,
	"subject" text NOT NULL,
	"reply_to" text,
	"receipt_type" text NOT NULL,
	"status" text NOT NULL,
	"refusal" text,
	"refused_for_virus" boolean DEFAULT false NOT NULL,
	"size_bytes" integer NOT NULL,
	"content" "bytea",
	"submitted_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "provider_identities" (
	"id" text PRIMARY KEY NOT NULL,
	"provider_name" text NOT NULL,
	"service_address" text NOT NULL,
	"ca_certificate_pem" text NOT NULL,
	"certificate_pem" text NOT NULL,
	"private_key_pem" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "mailbox_messages" ADD CONSTRAINT "mailbox_messages_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pec_recipients" ADD CONSTRAINT "pec_recipients_transaction_id_pec_transactions_id_fk" FOREIGN KEY ("transaction_id") REFERENCES "public"."pec_transactions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pec_transactions" ADD CONSTRAINT "pec_transactions_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pec_transactions" ADD CONSTRAINT "pec_transactions_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "log_register_mailbox_idx" ON "log_register" USING btree ("mailbox_id","occurred_at");--> statement-breakpoint
CREATE INDEX "log_register_partner_idx" ON "log_register" USING btree ("partner_id","occurred_at");--> statement-breakpoint
CREATE INDEX "log_register_message_idx" ON "log_register" USING btree ("message_id");--> statement-breakpoint
CREATE INDEX "log_register_time_idx" ON "log_register" USING btree ("occurred_at");--> statement-breakpoint
CREATE UNIQUE INDEX "mailbox_messages_dedupe_key" ON "mailbox_messages" USING btree (coalesce("mailbox_id", ''),"dedupe_key");--> statement-breakpoint
CREATE INDEX "mailbox_messages_folder_idx" ON "mailbox_messages" USING btree ("mailbox_id","folder","id");--> statement-breakpoint
CREATE INDEX "mailbox_messages_pec_idx" ON "mailbox_messages" USING btree ("pec_message_id");--> statement-breakpoint
CREATE UNIQUE INDEX "pec_jobs_dedupe_key" ON "pec_jobs" USING btree ("dedupe_key");--> statement-breakpoint
CREATE INDEX "pec_jobs_due_idx" ON "pec_jobs" USING btree ("run_at") WHERE "pec_jobs"."done_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "pec_transactions_message_id_key" ON "pec_transactions" USING btree ("pec_message_id");--> statement-breakpoint
CREATE INDEX "pec_transactions_mailbox_idx" ON "pec_transactions" USING btree ("mailbox_id","submitted_at");