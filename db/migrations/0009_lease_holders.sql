-- Every lease names its holder: the key of the worker incarnation that took it (its advisory lock shows whether it
-- lives) and the database time of the claim (a lease older than the server's last start waits for its holder to
-- take its lock back). Leases taken before this migration have no holder and expire as before.
ALTER TABLE "scheduled_tasks" ADD COLUMN "locked_by" integer;--> statement-breakpoint
ALTER TABLE "scheduled_tasks" ADD COLUMN "locked_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "pec_jobs" ADD COLUMN "locked_by" integer;--> statement-breakpoint
ALTER TABLE "pec_jobs" ADD COLUMN "locked_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD COLUMN "locked_by" integer;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD COLUMN "locked_at" timestamp with time zone;