CREATE TABLE "mailbox_sign_ins" (
	"id" text PRIMARY KEY NOT NULL,
	"door" text NOT NULL,
	"user_name" text NOT NULL,
	"mailbox_id" text,
	"delegate_account_id" text,
	"remote_address" text NOT NULL,
	"outcome" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	CONSTRAINT "mailbox_sign_ins_door_check" CHECK ("mailbox_sign_ins"."door" in ('rest','smtp','imap','pop3','webmail')),
	CONSTRAINT "mailbox_sign_ins_outcome_check" CHECK ("mailbox_sign_ins"."outcome" in ('succeeded','failed','locked_out','unavailable')),
	CONSTRAINT "mailbox_sign_ins_user_name_check" CHECK (length("mailbox_sign_ins"."user_name") <= 320)
);
--> statement-breakpoint
ALTER TABLE "mailbox_sign_ins" ADD CONSTRAINT "mailbox_sign_ins_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mailbox_sign_ins" ADD CONSTRAINT "mailbox_sign_ins_delegate_account_id_delegate_accounts_id_fk" FOREIGN KEY ("delegate_account_id") REFERENCES "public"."delegate_accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "mailbox_sign_ins_user_idx" ON "mailbox_sign_ins" USING btree ("user_name","at");--> statement-breakpoint
CREATE INDEX "mailbox_sign_ins_address_idx" ON "mailbox_sign_ins" USING btree ("remote_address","at");--> statement-breakpoint
CREATE INDEX "mailbox_sign_ins_mailbox_idx" ON "mailbox_sign_ins" USING btree ("mailbox_id","at");