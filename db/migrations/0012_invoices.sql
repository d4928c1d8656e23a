CREATE TABLE "invoice_counters" (
	"year" integer PRIMARY KEY NOT NULL,
	"last_number" integer NOT NULL,
	CONSTRAINT "invoice_counters_last_number_check" CHECK ("invoice_counters"."last_number" >= 1 and "invoice_counters"."last_number" <= 999999)
);
--> statement-breakpoint
CREATE TABLE "invoices" (
	"id" text PRIMARY KEY NOT NULL,
	"partner_id" text NOT NULL,
	"year" integer NOT NULL,
	"sequence" integer NOT NULL,
	"number" text NOT NULL,
	"issue_date" date NOT NULL,
	"issued_at" timestamp with time zone NOT NULL,
	"top_up_id" text NOT NULL,
	"currency" text DEFAULT 'EUR' NOT NULL,
	"net_cents" bigint NOT NULL,
	"vat_rate_basis_points" integer NOT NULL,
	"vat_cents" bigint NOT NULL,
	"total_cents" bigint NOT NULL,
	"lines" jsonb NOT NULL,
	"customer" jsonb NOT NULL,
	"supplier" jsonb NOT NULL,
	"payment" jsonb NOT NULL,
	"file_name" text NOT NULL,
	"xml" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "invoices_sequence_check" CHECK ("invoices"."sequence" between 1 and 999999),
	CONSTRAINT "invoices_number_check" CHECK ("invoices"."number" = "invoices"."year"::text || '/' || lpad("invoices"."sequence"::text, 6, '0')),
	CONSTRAINT "invoices_year_check" CHECK ("invoices"."year" = extract(year from "invoices"."issue_date")::int),
	CONSTRAINT "invoices_amounts_check" CHECK ("invoices"."net_cents" > 0 and "invoices"."vat_cents" >= 0 and "invoices"."total_cents" = "invoices"."net_cents" + "invoices"."vat_cents")
);
--> statement-breakpoint
CREATE TABLE "partner_fiscal_data" (
	"partner_id" text PRIMARY KEY NOT NULL,
	"legal_name" text,
	"vat_number" text,
	"tax_code" text,
	"address" jsonb,
	"sdi_code" text,
	"pec" text,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "partner_fiscal_data_vat_check" CHECK ("partner_fiscal_data"."vat_number" is null or "partner_fiscal_data"."vat_number" ~ '^[0-9]{11}$'),
	CONSTRAINT "partner_fiscal_data_sdi_check" CHECK ("partner_fiscal_data"."sdi_code" is null or "partner_fiscal_data"."sdi_code" ~ '^[A-Z0-9]{7}$')
);
--> statement-breakpoint
ALTER TABLE "invoices" ADD CONSTRAINT "invoices_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "invoices" ADD CONSTRAINT "invoices_top_up_id_top_ups_id_fk" FOREIGN KEY ("top_up_id") REFERENCES "public"."top_ups"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "partner_fiscal_data" ADD CONSTRAINT "partner_fiscal_data_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "invoices_year_sequence_key" ON "invoices" USING btree ("year","sequence");--> statement-breakpoint
CREATE UNIQUE INDEX "invoices_number_key" ON "invoices" USING btree ("number");--> statement-breakpoint
CREATE UNIQUE INDEX "invoices_file_name_key" ON "invoices" USING btree ("file_name");--> statement-breakpoint
CREATE UNIQUE INDEX "invoices_top_up_key" ON "invoices" USING btree ("top_up_id");--> statement-breakpoint
CREATE INDEX "invoices_partner_idx" ON "invoices" USING btree ("partner_id","id");