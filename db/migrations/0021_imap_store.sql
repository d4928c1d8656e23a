-- UIDVALIDITY values come from one sequence started at the Unix time of this migration: never reused by a folder
-- created later, even one with the name of a deleted folder (RFC 9051 §2.3.1.1).
CREATE SEQUENCE "mailbox_uid_validity_seq" AS bigint MAXVALUE 4294967295;--> statement-breakpoint
SELECT setval('mailbox_uid_validity_seq', extract(epoch from now())::bigint);--> statement-breakpoint
CREATE TABLE "mailbox_expunges" (
	"mailbox_id" text NOT NULL,
	"folder" text NOT NULL,
	"uid" integer NOT NULL,
	"modseq" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "mailbox_folders" (
	"mailbox_id" text NOT NULL,
	"name" text NOT NULL,
	"uid_validity" bigint DEFAULT nextval('mailbox_uid_validity_seq') NOT NULL,
	"uid_next" integer DEFAULT 1 NOT NULL,
	"highest_modseq" bigint DEFAULT 1 NOT NULL,
	"subscribed" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "mailbox_folders_mailbox_id_name_pk" PRIMARY KEY("mailbox_id","name")
);
--> statement-breakpoint
ALTER TABLE "mailbox_messages" ADD COLUMN "answered" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "mailbox_messages" ADD COLUMN "flagged" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "mailbox_messages" ADD COLUMN "draft" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "mailbox_messages" ADD COLUMN "deleted" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "mailbox_messages" ADD COLUMN "keywords" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "mailbox_messages" ADD COLUMN "uid" integer;--> statement-breakpoint
ALTER TABLE "mailbox_messages" ADD COLUMN "modseq" bigint;--> statement-breakpoint
ALTER TABLE "mailbox_messages" ADD COLUMN "imap_summary" jsonb;--> statement-breakpoint
ALTER TABLE "mailbox_folders" ADD CONSTRAINT "mailbox_folders_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "mailbox_expunges_modseq_idx" ON "mailbox_expunges" USING btree ("mailbox_id","folder","modseq");--> statement-breakpoint
-- Every mailbox gets its system folders; stored messages get UIDs in the order they were stored.
INSERT INTO "mailbox_folders" ("mailbox_id", "name")
  SELECT m.id, f.name FROM "mailboxes" m CROSS JOIN (VALUES ('inbox'), ('sent'), ('receipts'), ('archive'), ('drafts'), ('trash')) AS f(name);--> statement-breakpoint
UPDATE "mailbox_messages" mm SET "uid" = n.rn, "modseq" = 1
  FROM (SELECT id, row_number() OVER (PARTITION BY mailbox_id, folder ORDER BY id)::int AS rn FROM "mailbox_messages" WHERE mailbox_id IS NOT NULL) n
  WHERE mm.id = n.id;--> statement-breakpoint
UPDATE "mailbox_folders" f SET "uid_next" = coalesce((SELECT max(uid) + 1 FROM "mailbox_messages" WHERE mailbox_id = f.mailbox_id AND folder = f.name), 1);--> statement-breakpoint
ALTER TABLE "mailbox_messages" ADD CONSTRAINT "mailbox_messages_folder_fk" FOREIGN KEY ("mailbox_id","folder") REFERENCES "public"."mailbox_folders"("mailbox_id","name") ON DELETE no action ON UPDATE cascade;--> statement-breakpoint
CREATE UNIQUE INDEX "mailbox_messages_uid_key" ON "mailbox_messages" USING btree ("mailbox_id","folder","uid");--> statement-breakpoint
CREATE INDEX "mailbox_messages_modseq_idx" ON "mailbox_messages" USING btree ("mailbox_id","folder","modseq");--> statement-breakpoint
ALTER TABLE "mailbox_messages" ADD CONSTRAINT "mailbox_messages_uid_check" CHECK ("mailbox_messages"."mailbox_id" is null or ("mailbox_messages"."uid" is not null and "mailbox_messages"."modseq" is not null));;--> statement-breakpoint
-- Every mailbox has its system folders from the start.
CREATE FUNCTION mailbox_system_folders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO mailbox_folders (mailbox_id, name)
    SELECT NEW.id, f.name FROM (VALUES ('inbox'), ('sent'), ('receipts'), ('archive'), ('drafts'), ('trash')) AS f(name)
    ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER mailboxes_system_folders AFTER INSERT ON mailboxes FOR EACH ROW EXECUTE FUNCTION mailbox_system_folders();--> statement-breakpoint
-- The next UID (and MODSEQ) of a folder, under its row's lock; a folder that does not exist is the foreign key's error.
CREATE FUNCTION mailbox_folder_next_uid(mailbox text, folder text, OUT uid integer, OUT modseq bigint) LANGUAGE plpgsql AS $$
BEGIN
  UPDATE mailbox_folders SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
    WHERE mailbox_id = mailbox AND name = folder
    RETURNING uid_next - 1, highest_modseq INTO uid, modseq;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'mailbox % has no folder %', mailbox, folder USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'mailbox_messages_folder_fk';
  END IF;
END $$;--> statement-breakpoint
-- UIDs and MODSEQs are allocated here, from the folder row and under its lock, whichever process or door writes:
-- a new message takes the next UID; a move takes the next UID of the target folder and records the expunge in the
-- source; a flag change takes the next MODSEQ. A folder rename (cascaded from mailbox_folders) keeps both.
-- Every change notifies 'mailbox_changes' with the mailbox id at commit, which wakes IDLE in every process.
CREATE FUNCTION mailbox_messages_track() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  left_at bigint;
BEGIN
  IF NEW.mailbox_id IS NULL THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    SELECT f.uid, f.modseq INTO NEW.uid, NEW.modseq FROM mailbox_folder_next_uid(NEW.mailbox_id, NEW.folder) f;
  ELSIF NEW.folder IS DISTINCT FROM OLD.folder THEN
    IF NOT EXISTS (SELECT 1 FROM mailbox_folders WHERE mailbox_id = OLD.mailbox_id AND name = OLD.folder) THEN
      RETURN NEW; -- the folder itself was renamed
    END IF;
    -- Both rows locked in name order, so that two opposite moves wait for each other instead of deadlocking.
    PERFORM 1 FROM mailbox_folders WHERE mailbox_id = NEW.mailbox_id AND name IN (OLD.folder, NEW.folder) ORDER BY name FOR UPDATE;
    SELECT f.uid, f.modseq INTO NEW.uid, NEW.modseq FROM mailbox_folder_next_uid(NEW.mailbox_id, NEW.folder) f;
    UPDATE mailbox_folders SET highest_modseq = highest_modseq + 1
      WHERE mailbox_id = OLD.mailbox_id AND name = OLD.folder RETURNING highest_modseq INTO left_at;
    INSERT INTO mailbox_expunges (mailbox_id, folder, uid, modseq) VALUES (OLD.mailbox_id, OLD.folder, OLD.uid, left_at);
  ELSIF (NEW.seen, NEW.answered, NEW.flagged, NEW.draft, NEW.deleted, NEW.keywords)
      IS DISTINCT FROM (OLD.seen, OLD.answered, OLD.flagged, OLD.draft, OLD.deleted, OLD.keywords) THEN
    UPDATE mailbox_folders SET highest_modseq = highest_modseq + 1
      WHERE mailbox_id = NEW.mailbox_id AND name = NEW.folder RETURNING highest_modseq INTO NEW.modseq;
  ELSE
    RETURN NEW; -- nothing a client sees changed (the IMAP summary cache, say)
  END IF;
  PERFORM pg_notify('mailbox_changes', NEW.mailbox_id);
  RETURN NEW;
END $$;--> statement-breakpoint
CREATE TRIGGER mailbox_messages_track BEFORE INSERT OR UPDATE ON mailbox_messages FOR EACH ROW EXECUTE FUNCTION mailbox_messages_track();--> statement-breakpoint
CREATE FUNCTION mailbox_messages_expunged() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  left_at bigint;
BEGIN
  IF OLD.mailbox_id IS NULL THEN
    RETURN NULL;
  END IF;
  UPDATE mailbox_folders SET highest_modseq = highest_modseq + 1
    WHERE mailbox_id = OLD.mailbox_id AND name = OLD.folder RETURNING highest_modseq INTO left_at;
  IF FOUND THEN
    INSERT INTO mailbox_expunges (mailbox_id, folder, uid, modseq) VALUES (OLD.mailbox_id, OLD.folder, OLD.uid, left_at);
  END IF;
  PERFORM pg_notify('mailbox_changes', OLD.mailbox_id);
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER mailbox_messages_expunged AFTER DELETE ON mailbox_messages FOR EACH ROW EXECUTE FUNCTION mailbox_messages_expunged();--> statement-breakpoint
-- A folder's expunge record follows its renames and goes with it.
CREATE FUNCTION mailbox_folders_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    DELETE FROM mailbox_expunges WHERE mailbox_id = OLD.mailbox_id AND folder = OLD.name;
  ELSIF NEW.name IS DISTINCT FROM OLD.name THEN
    UPDATE mailbox_expunges SET folder = NEW.name WHERE mailbox_id = OLD.mailbox_id AND folder = OLD.name;
  END IF;
  PERFORM pg_notify('mailbox_changes', OLD.mailbox_id);
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER mailbox_folders_follow AFTER UPDATE OF name OR DELETE ON mailbox_folders FOR EACH ROW EXECUTE FUNCTION mailbox_folders_follow();