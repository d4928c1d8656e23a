CREATE TABLE "test_clocks" (
	"id" text PRIMARY KEY NOT NULL,
	"partner_id" text NOT NULL,
	"name" text,
	"frozen_time" timestamp with time zone NOT NULL,
	"status" text DEFAULT 'ready' NOT NULL,
	"advancing_to" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "test_clocks_status_check" CHECK ("test_clocks"."status" in ('ready', 'advancing')),
	CONSTRAINT "test_clocks_advancing_check" CHECK (("test_clocks"."status" = 'advancing') = ("test_clocks"."advancing_to" is not null))
);
--> statement-breakpoint
ALTER TABLE "test_clocks" ADD CONSTRAINT "test_clocks_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "test_clocks_partner_key" ON "test_clocks" USING btree ("partner_id");