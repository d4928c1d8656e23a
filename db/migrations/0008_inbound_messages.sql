CREATE TABLE "pec_inbound_messages" (
	"id" text PRIMARY KEY NOT NULL,
	"raw" "bytea" NOT NULL,
	"size_bytes" integer NOT NULL,
	"sha256" text NOT NULL,
	"mail_from" text NOT NULL,
	"rcpt_to" text[] NOT NULL,
	"received_at" timestamp with time zone NOT NULL,
	"processed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "pec_inbound_messages_processed_idx" ON "pec_inbound_messages" USING btree ("processed_at") WHERE "pec_inbound_messages"."processed_at" is not null;--> statement-breakpoint
-- Inbound jobs queued before this migration carry the message in their payload as base64: moved here, and the
-- payload keeps only the id. Those already done count as processed when their job was done, so the retention
-- purge takes them in turn; the others are processed as usual.
INSERT INTO "pec_inbound_messages" ("id", "raw", "size_bytes", "sha256", "mail_from", "rcpt_to", "received_at", "processed_at")
  SELECT 'inm_' || lpad(j."id"::text, 26, '0'), m."raw", octet_length(m."raw"), encode(sha256(m."raw"), 'hex'),
         coalesce(j."payload"->>'mailFrom', ''), ARRAY(SELECT jsonb_array_elements_text(j."payload"->'rcptTo')), j."created_at", j."done_at"
  FROM "pec_jobs" j CROSS JOIN LATERAL (SELECT decode(j."payload"->>'raw', 'base64') AS "raw") m
  WHERE j."kind" = 'inbound' AND j."payload"->>'raw' IS NOT NULL;
--> statement-breakpoint
UPDATE "pec_jobs" SET "payload" = jsonb_build_object('message', 'inm_' || lpad("id"::text, 26, '0'))
  WHERE "kind" = 'inbound' AND "payload"->>'raw' IS NOT NULL;
