ALTER TABLE "idempotency_keys" ADD COLUMN "claimed_by" text;--> statement-breakpoint
-- Added nullable, filled, then made NOT NULL: existing keys count as claimed when they were created.
ALTER TABLE "idempotency_keys" ADD COLUMN "claimed_at" timestamp with time zone;--> statement-breakpoint
UPDATE "idempotency_keys" SET "claimed_at" = "created_at";--> statement-breakpoint
ALTER TABLE "idempotency_keys" ALTER COLUMN "claimed_at" SET NOT NULL;
