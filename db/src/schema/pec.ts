import { sql } from 'drizzle-orm';
import {
  bigint, bigserial, boolean, check, customType, foreignKey, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex,
  type AnyPgColumn,
} from 'drizzle-orm/pg-core';
import { mailboxes } from './mailboxes.ts';
import { partners } from './partners.ts';

/** Raw message bytes. */
export const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });

/**
 * The provider's signing identity. One row ('current'): generated on first start (the first process to insert
 * wins, the others read it) or replaced by PEM files named in the configuration. Kept in the database so every
 * process signs with the same key.
 */
export const providerIdentities = pgTable('provider_identities', {
  id: text('id').primaryKey(),
  providerName: text('provider_name').notNull(),
  serviceAddress: text('service_address').notNull(),
  caCertificatePem: text('ca_certificate_pem').notNull(),
  certificatePem: text('certificate_pem').notNull(),
  privateKeyPem: text('private_key_pem').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
});

export const receiptTypes = ['completa', 'breve', 'sintetica'] as const;
export type ReceiptType = (typeof receiptTypes)[number];

/**
 * One message submitted at this provider's access point: what was accepted (or refused), once. `content` is the
 * original with its Message-ID replaced by the PEC one: the postacert.eml of every envelope.
 */
export const pecTransactions = pgTable(
  'pec_transactions',
  {
    id: text('id').primaryKey(),
    partnerId: text('partner_id').notNull().references(() => partners.id),
    mailboxId: text('mailbox_id').notNull().references(() => mailboxes.id),
    /** The delegation (multiutenza) whose collaborator sent it; null when the holder did. */
    delegationId: text('delegation_id'),
    /** The PEC msgid (without angle brackets), the `identificativo` of every receipt of this transaction. */
    pecMessageId: text('pec_message_id').notNull(),
    /** The client's Message-ID with angle brackets, as daticert `msgid` wants it. */
    originalMessageId: text('original_message_id'),
    sender: text('sender').notNull(),
    subject: text('subject').notNull(),
    replyTo: text('reply_to'),
    receiptType: text('receipt_type', { enum: receiptTypes }).notNull(),
    status: text('status', { enum: ['accepted', 'refused'] }).notNull(),
    /** Why the access point refused it (non-acceptance notice), and whether for a virus. */
    refusal: text('refusal'),
    refusedForVirus: boolean('refused_for_virus').notNull().default(false),
    sizeBytes: integer('size_bytes').notNull(),
    content: bytea('content'),
    /** The single timestamp of the acceptance (or refusal), used in every message and log entry about it. */
    submittedAt: timestamp('submitted_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    uniqueIndex('pec_transactions_message_id_key').on(t.pecMessageId),
    index('pec_transactions_mailbox_idx').on(t.mailboxId, t.submittedAt),
  ],
);

export const recipientStatuses = ['pending', 'taken_in_charge', 'delivered', 'failed'] as const;
export type RecipientStatus = (typeof recipientStatuses)[number];

/** Each recipient of an accepted transaction and where its delivery stands (timers read this). */
export const pecRecipients = pgTable(
  'pec_recipients',
  {
    transactionId: text('transaction_id').notNull().references(() => pecTransactions.id),
    address: text('address').notNull(),
    role: text('role', { enum: ['to', 'cc'] }).notNull(),
    /** In some provider's managed domains (destinatari tipo="certificato") or ordinary mail ("esterno"). */
    certified: boolean('certified').notNull(),
    status: text('status', { enum: recipientStatuses }).notNull().default('pending'),
    takenInChargeAt: timestamp('taken_in_charge_at', { withTimezone: true, mode: 'date' }),
    deliveredAt: timestamp('delivered_at', { withTimezone: true, mode: 'date' }),
    failedAt: timestamp('failed_at', { withTimezone: true, mode: 'date' }),
    /** daticert `errore` and `errore-esteso` of the non-delivery notice. */
    errorCode: text('error_code'),
    errorDetail: text('error_detail'),
    delayWarnedAt: timestamp('delay_warned_at', { withTimezone: true, mode: 'date' }),
    timedOutAt: timestamp('timed_out_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [primaryKey({ columns: [t.transactionId, t.address] })],
);

/**
 * The folders every mailbox has. A holder may add folders of its own (IMAP CREATE, the REST folders API): their
 * names are paths with `/` between levels, and never one of these names in any letter case.
 */
export const mailboxFolders = ['inbox', 'sent', 'receipts', 'archive', 'drafts', 'trash'] as const;
export type SystemFolder = (typeof mailboxFolders)[number];
/** A system folder's name or a user folder's path. */
export type MailboxFolder = string;

export const storedMessageKinds = [
  'original', 'transport_envelope', 'anomaly_envelope', 'acceptance', 'non_acceptance', 'take_charge', 'delivery',
  'non_delivery', 'delay_warning', 'timeout', 'virus_detection', 'non_delivery_virus',
  // Put in the mailbox by the holder's mail client (IMAP APPEND): stored, never sent, not certified.
  'appended',
] as const;
export type StoredMessageKind = (typeof storedMessageKinds)[number];

/**
 * Messages as stored in a mailbox (mailbox_id null: the provider's service mailbox). `dedupe_key` makes every
 * store idempotent: a retried pipeline step finds its message already there and stores nothing twice.
 */
export const mailboxMessages = pgTable(
  'mailbox_messages',
  {
    id: text('id').primaryKey(),
    mailboxId: text('mailbox_id').references(() => mailboxes.id),
    folder: text('folder').notNull(),
    kind: text('kind', { enum: storedMessageKinds }).notNull(),
    /** Message-ID of this message (without angle brackets). */
    messageId: text('message_id').notNull(),
    /** The PEC msgid of the transaction it belongs to. */
    pecMessageId: text('pec_message_id'),
    subject: text('subject').notNull(),
    fromAddress: text('from_address').notNull(),
    sizeBytes: integer('size_bytes').notNull(),
    seen: boolean('seen').notNull().default(false),
    answered: boolean('answered').notNull().default(false),
    flagged: boolean('flagged').notNull().default(false),
    draft: boolean('draft').notNull().default(false),
    /** Marked for removal (IMAP \\Deleted): gone at the next expunge. */
    deleted: boolean('deleted').notNull().default(false),
    /** IMAP keywords ($Forwarded, $Label1…), as the client wrote them. */
    keywords: text('keywords').array().notNull().default(sql`'{}'::text[]`),
    /**
     * IMAP UID in its folder and the modification sequence of its last change (RFC 7162), both allocated by the
     * trigger `mailbox_messages_track` from the folder's row, never by a process. Null in the service mailbox.
     */
    uid: integer('uid'),
    modseq: bigint('modseq', { mode: 'number' }),
    /** ENVELOPE and BODYSTRUCTURE as IMAP shows them, computed once on first FETCH (the content never changes). */
    imapSummary: jsonb('imap_summary'),
    content: bytea('content').notNull(),
    dedupeKey: text('dedupe_key').notNull(),
    /** Also the IMAP INTERNALDATE. */
    storedAt: timestamp('stored_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    uniqueIndex('mailbox_messages_dedupe_key').on(sql`coalesce(${t.mailboxId}, '')`, t.dedupeKey),
    index('mailbox_messages_folder_idx').on(t.mailboxId, t.folder, t.id),
    uniqueIndex('mailbox_messages_uid_key').on(t.mailboxId, t.folder, t.uid),
    index('mailbox_messages_modseq_idx').on(t.mailboxId, t.folder, t.modseq),
    index('mailbox_messages_pec_idx').on(t.pecMessageId),
    // A message is in a folder that exists; renaming a folder carries its messages along (their UIDs stay).
    foreignKey({ name: 'mailbox_messages_folder_fk', columns: [t.mailboxId, t.folder], foreignColumns: [mailboxFolderRows.mailboxId, mailboxFolderRows.name] as [AnyPgColumn, AnyPgColumn] }).onUpdate('cascade'),
    check('mailbox_messages_uid_check', sql`${t.mailboxId} is null or (${t.uid} is not null and ${t.modseq} is not null)`),
  ],
);

/**
 * A mailbox's folders, system and user ones. The row is the folder's IMAP state: UIDVALIDITY (from a sequence, so
 * never reused), the next UID and the highest modification sequence. Every message change takes them from here
 * under the row's lock, so UIDs and MODSEQs are strictly ascending in commit order whatever process writes.
 */
export const mailboxFolderRows = pgTable(
  'mailbox_folders',
  {
    mailboxId: text('mailbox_id').notNull().references(() => mailboxes.id),
    name: text('name').notNull(),
    uidValidity: bigint('uid_validity', { mode: 'number' }).notNull().default(sql`nextval('mailbox_uid_validity_seq')`),
    uidNext: integer('uid_next').notNull().default(1),
    highestModseq: bigint('highest_modseq', { mode: 'number' }).notNull().default(1),
    subscribed: boolean('subscribed').notNull().default(true),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.mailboxId, t.name] })],
);

/** Messages that left a folder (expunged, deleted or moved out), with the MODSEQ of their leaving (QRESYNC, RFC 7162). */
export const mailboxExpunges = pgTable(
  'mailbox_expunges',
  {
    mailboxId: text('mailbox_id').notNull(),
    folder: text('folder').notNull(),
    uid: integer('uid').notNull(),
    modseq: bigint('modseq', { mode: 'number' }).notNull(),
  },
  (t) => [index('mailbox_expunges_modseq_idx').on(t.mailboxId, t.folder, t.modseq)],
);

/**
 * The engine's durable work queue. A worker claims a due job with FOR UPDATE SKIP LOCKED and a lease; every job
 * is idempotent, so one that crashed is simply run again after its lease. `dedupe_key` keeps a step from being
 * queued twice.
 */
export const pecJobs = pgTable(
  'pec_jobs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    kind: text('kind').notNull(),
    payload: jsonb('payload').notNull(),
    dedupeKey: text('dedupe_key').notNull(),
    runAt: timestamp('run_at', { withTimezone: true, mode: 'date' }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    lockedUntil: timestamp('locked_until', { withTimezone: true, mode: 'date' }),
    /** The key of the worker incarnation holding the lease (its advisory lock says whether it lives); see WorkerIdentity. */
    lockedBy: integer('locked_by'),
    /** Database time of the claim: tells a lease taken before a database restart from one taken since. */
    lockedAt: timestamp('locked_at', { withTimezone: true, mode: 'date' }),
    lastError: text('last_error'),
    doneAt: timestamp('done_at', { withTimezone: true, mode: 'date' }),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    uniqueIndex('pec_jobs_dedupe_key').on(t.dedupeKey),
    index('pec_jobs_due_idx').on(t.runAt).where(sql`${t.doneAt} is null`),
  ],
);

/**
 * What the receiving point took over SMTP, as received, stored with its `inbound` job before the SMTP 250. The job
 * names the row by id, so the queue never carries message bytes. Kept while unprocessed, whatever its age; once
 * processed (delivered, wrapped or answered: every mailbox keeps its own copy) only for the operator's diagnosis,
 * then purged.
 */
export const pecInboundMessages = pgTable(
  'pec_inbound_messages',
  {
    id: text('id').primaryKey(),
    raw: bytea('raw').notNull(),
    sizeBytes: integer('size_bytes').notNull(),
    /** Hex SHA-256 of `raw`: with the recipients, what tells a repeated delivery from a new one. */
    sha256: text('sha256').notNull(),
    /** The SMTP envelope: reverse-path ('' for a null sender) and forward-paths. */
    mailFrom: text('mail_from').notNull(),
    rcptTo: text('rcpt_to').array().notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true, mode: 'date' }).notNull(),
    processedAt: timestamp('processed_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [index('pec_inbound_messages_processed_idx').on(t.processedAt).where(sql`${t.processedAt} is not null`)],
);

/**
 * The log register (spec §10.1): one row per event, no message bodies, kept 30 months. Rows are hash-chained:
 * `hash` = SHA-256 over the previous hash and this row's fields, so any change or removal inside the kept
 * period is detectable. A trigger refuses updates and deletes except the retention purge.
 */
export const logRegister = pgTable(
  'log_register',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    occurredAt: timestamp('occurred_at', { withTimezone: true, mode: 'date' }).notNull(),
    event: text('event').notNull(),
    /** The PEC msgid of the transaction. */
    messageId: text('message_id').notNull(),
    /** Message-IDs of the messages this event generated (receipt, envelope…). */
    relatedMessageIds: text('related_message_ids').array().notNull(),
    sender: text('sender').notNull(),
    recipients: text('recipients').array().notNull(),
    subject: text('subject').notNull(),
    provider: text('provider').notNull(),
    mailboxId: text('mailbox_id'),
    partnerId: text('partner_id'),
    details: jsonb('details').notNull(),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
  },
  (t) => [
    index('log_register_mailbox_idx').on(t.mailboxId, t.occurredAt),
    index('log_register_partner_idx').on(t.partnerId, t.occurredAt),
    index('log_register_message_idx').on(t.messageId),
    index('log_register_time_idx').on(t.occurredAt),
  ],
);

/** Where the chain stands: appends lock this row, so entries are chained one after another. */
export const logRegisterHead = pgTable(
  'log_register_head',
  {
    id: integer('id').primaryKey(),
    lastSeq: bigint('last_seq', { mode: 'number' }).notNull(),
    lastHash: text('last_hash').notNull(),
    /** After a purge, the hash the first kept entry chains from. */
    anchorHash: text('anchor_hash').notNull(),
  },
  (t) => [check('log_register_head_single', sql`${t.id} = 1`)],
);
