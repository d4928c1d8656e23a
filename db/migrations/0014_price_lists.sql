CREATE TABLE "price_list_versions" (
	"price_list_id" text NOT NULL,
	"version" integer NOT NULL,
	"prices" jsonb NOT NULL,
	"effective_from" timestamp with time zone NOT NULL,
	"created_by" text,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "price_list_versions_price_list_id_version_pk" PRIMARY KEY("price_list_id","version"),
	CONSTRAINT "price_list_versions_version_check" CHECK ("price_list_versions"."version" >= 1),
	CONSTRAINT "price_list_versions_prices_check" CHECK (jsonb_typeof("price_list_versions"."prices") = 'object')
);
--> statement-breakpoint
CREATE TABLE "price_lists" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"created_by" text,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "partners" ADD COLUMN "price_list_id" text;--> statement-breakpoint
ALTER TABLE "price_list_versions" ADD CONSTRAINT "price_list_versions_price_list_id_price_lists_id_fk" FOREIGN KEY ("price_list_id") REFERENCES "public"."price_lists"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "price_list_versions" ADD CONSTRAINT "price_list_versions_created_by_operator_api_keys_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."operator_api_keys"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "price_lists" ADD CONSTRAINT "price_lists_created_by_operator_api_keys_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."operator_api_keys"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "price_list_versions_effective_idx" ON "price_list_versions" USING btree ("price_list_id","effective_from");--> statement-breakpoint
ALTER TABLE "partners" ADD CONSTRAINT "partners_price_list_id_price_lists_id_fk" FOREIGN KEY ("price_list_id") REFERENCES "public"."price_lists"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "partners_price_list_idx" ON "partners" USING btree ("price_list_id");