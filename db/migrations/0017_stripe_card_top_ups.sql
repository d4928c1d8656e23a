CREATE TABLE "stripe_events" (
	"id" text PRIMARY KEY NOT NULL,
	"type" text NOT NULL,
	"livemode" boolean NOT NULL,
	"checkout_session_id" text,
	"top_up_id" text,
	"outcome" text NOT NULL,
	"amount_cents" bigint,
	"currency" text,
	"detail" text,
	"stripe_created_at" timestamp with time zone NOT NULL,
	"received_at" timestamp with time zone NOT NULL,
	CONSTRAINT "stripe_events_outcome_check" CHECK ("stripe_events"."outcome" in ('credited','already_credited','failed','expired','awaiting_payment','amount_mismatch','unknown_session','top_up_not_creditable','ignored'))
);
--> statement-breakpoint
ALTER TABLE "top_ups" DROP CONSTRAINT "top_ups_method_check";--> statement-breakpoint
ALTER TABLE "top_ups" ADD COLUMN "stripe_checkout_session_id" text;--> statement-breakpoint
ALTER TABLE "top_ups" ADD COLUMN "stripe_checkout_url" text;--> statement-breakpoint
ALTER TABLE "top_ups" ADD COLUMN "stripe_payment_intent_id" text;--> statement-breakpoint
ALTER TABLE "stripe_events" ADD CONSTRAINT "stripe_events_top_up_id_top_ups_id_fk" FOREIGN KEY ("top_up_id") REFERENCES "public"."top_ups"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "stripe_events_top_up_idx" ON "stripe_events" USING btree ("top_up_id");--> statement-breakpoint
CREATE INDEX "stripe_events_outcome_idx" ON "stripe_events" USING btree ("outcome","received_at");--> statement-breakpoint
CREATE UNIQUE INDEX "top_ups_stripe_checkout_session_key" ON "top_ups" USING btree ("stripe_checkout_session_id");--> statement-breakpoint
ALTER TABLE "top_ups" ADD CONSTRAINT "top_ups_card_session_check" CHECK (("top_ups"."method" = 'card') = ("top_ups"."stripe_checkout_session_id" is not null));--> statement-breakpoint
ALTER TABLE "top_ups" ADD CONSTRAINT "top_ups_method_check" CHECK ("top_ups"."method" in ('bank_transfer','card'));