DROP INDEX "domains_certified_name_key";--> statement-breakpoint
DROP INDEX "mailboxes_address_key";--> statement-breakpoint
ALTER TABLE "partners" ADD COLUMN "livemode" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "partners" ADD COLUMN "live_partner_id" text;--> statement-breakpoint
ALTER TABLE "domains" ADD COLUMN "livemode" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "mailboxes" ADD COLUMN "livemode" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "partners" ADD CONSTRAINT "partners_live_partner_id_partners_id_fk" FOREIGN KEY ("live_partner_id") REFERENCES "public"."partners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "partners_test_twin_key" ON "partners" USING btree ("live_partner_id");--> statement-breakpoint
CREATE UNIQUE INDEX "domains_certified_name_key" ON "domains" USING btree ("name","livemode") WHERE "domains"."status" in ('certified', 'degraded');--> statement-breakpoint
CREATE UNIQUE INDEX "mailboxes_address_key" ON "mailboxes" USING btree ("address","livemode");--> statement-breakpoint
ALTER TABLE "partners" ADD CONSTRAINT "partners_test_twin_check" CHECK ("partners"."livemode" = ("partners"."live_partner_id" is null));