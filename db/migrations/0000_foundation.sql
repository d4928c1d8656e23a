CREATE TABLE "api_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"partner_id" text NOT NULL,
	"name" text NOT NULL,
	"secret_hash" text NOT NULL,
	"secret_prefix" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "jwt_signing_keys" (
	"kid" text PRIMARY KEY NOT NULL,
	"alg" text NOT NULL,
	"private_jwk" jsonb NOT NULL,
	"public_jwk" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "partners" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "customers" (
	"id" text PRIMARY KEY NOT NULL,
	"partner_id" text NOT NULL,
	"type" text NOT NULL,
	"first_name" text,
	"last_name" text,
	"business_name" text,
	"tax_code" text,
	"vat_number" text,
	"address" jsonb,
	"email" text,
	"phone" text,
	"e_invoicing" jsonb,
	"public_procurement" jsonb,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"search_name" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "customers_type_check" CHECK ("customers"."type" in ('private_person','sole_trader','professional','company','non_profit','public_administration')),
	CONSTRAINT "customers_names_check" CHECK (("customers"."type" in ('private_person') and "customers"."first_name" is not null and "customers"."last_name" is not null)
          or ("customers"."type" <> 'private_person' and "customers"."business_name" is not null)),
	CONSTRAINT "customers_vat_required_check" CHECK ("customers"."type" not in ('company','sole_trader','professional') or "customers"."vat_number" is not null)
);
--> statement-breakpoint
CREATE TABLE "credit_accounts" (
	"partner_id" text PRIMARY KEY NOT NULL,
	"currency" text DEFAULT 'EUR' NOT NULL,
	"balance_cents" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "credit_accounts_balance_check" CHECK ("credit_accounts"."balance_cents" >= 0)
);
--> statement-breakpoint
CREATE TABLE "credit_ledger_entries" (
	"id" text PRIMARY KEY NOT NULL,
	"seq" bigserial NOT NULL,
	"partner_id" text NOT NULL,
	"kind" text NOT NULL,
	"amount_cents" bigint NOT NULL,
	"balance_after_cents" bigint NOT NULL,
	"currency" text DEFAULT 'EUR' NOT NULL,
	"description" text NOT NULL,
	"item_type" text,
	"item_id" text,
	"payment_reference" text,
	"request_id" text,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "credit_ledger_kind_check" CHECK ("credit_ledger_entries"."kind" in ('top_up','charge','refund','adjustment')),
	CONSTRAINT "credit_ledger_balance_check" CHECK ("credit_ledger_entries"."balance_after_cents" >= 0),
	CONSTRAINT "credit_ledger_amount_check" CHECK ("credit_ledger_entries"."amount_cents" <> 0),
	CONSTRAINT "credit_ledger_sign_check" CHECK (("credit_ledger_entries"."kind" in ('top_up','refund') and "credit_ledger_entries"."amount_cents" > 0) or ("credit_ledger_entries"."kind" = 'charge' and "credit_ledger_entries"."amount_cents" < 0) or "credit_ledger_entries"."kind" = 'adjustment')
);
--> statement-breakpoint
CREATE TABLE "idempotency_keys" (
	"partner_id" text NOT NULL,
	"key" text NOT NULL,
	"request_hash" text NOT NULL,
	"method" text NOT NULL,
	"path" text NOT NULL,
	"state" text NOT NULL,
	"response_status" integer,
	"response_body" text,
	"response_headers" jsonb,
	"created_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "idempotency_keys_partner_id_key_pk" PRIMARY KEY("partner_id","key"),
	CONSTRAINT "idempotency_state_check" CHECK ("idempotency_keys"."state" in ('in_progress','completed'))
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "customers" ADD CONSTRAINT "customers_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "credit_accounts" ADD CONSTRAINT "credit_accounts_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "credit_ledger_entries" ADD CONSTRAINT "credit_ledger_entries_partner_id_credit_accounts_partner_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."credit_accounts"("partner_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_secret_hash_key" ON "api_keys" USING btree ("secret_hash");--> statement-breakpoint
CREATE INDEX "api_keys_partner_idx" ON "api_keys" USING btree ("partner_id","id");--> statement-breakpoint
CREATE INDEX "customers_partner_idx" ON "customers" USING btree ("partner_id","id");--> statement-breakpoint
CREATE INDEX "customers_partner_tax_code_idx" ON "customers" USING btree ("partner_id","tax_code");--> statement-breakpoint
CREATE INDEX "customers_partner_vat_idx" ON "customers" USING btree ("partner_id","vat_number");--> statement-breakpoint
CREATE UNIQUE INDEX "credit_ledger_seq_key" ON "credit_ledger_entries" USING btree ("seq");--> statement-breakpoint
CREATE INDEX "credit_ledger_partner_seq_idx" ON "credit_ledger_entries" USING btree ("partner_id","seq");--> statement-breakpoint
CREATE UNIQUE INDEX "credit_ledger_payment_reference_key" ON "credit_ledger_entries" USING btree ("partner_id","payment_reference") WHERE "credit_ledger_entries"."kind" = 'top_up';