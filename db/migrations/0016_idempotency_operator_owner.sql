ALTER TABLE "idempotency_keys" DROP CONSTRAINT "idempotency_keys_partner_id_key_pk";--> statement-breakpoint
ALTER TABLE "idempotency_keys" ALTER COLUMN "partner_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD COLUMN "operator_key_id" text;--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD COLUMN "owner" text GENERATED ALWAYS AS (coalesce(partner_id, operator_key_id)) STORED NOT NULL;--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_owner_key_pk" PRIMARY KEY("owner","key");--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_operator_key_id_operator_api_keys_id_fk" FOREIGN KEY ("operator_key_id") REFERENCES "public"."operator_api_keys"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_owner_check" CHECK (("idempotency_keys"."partner_id" is null) <> ("idempotency_keys"."operator_key_id" is null));
