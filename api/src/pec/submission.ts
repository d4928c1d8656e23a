import { randomUUID } from 'node:crypto';
import { simpleParser, type AddressObject } from 'mailparser';
import type { ReceiptType } from '@pec-partner/db';
import { invalidMessage } from './mime-limits.ts';

/** What the access point reads from a submitted message. */
export interface ParsedSubmission {
  from: string[];
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  /** With angle brackets; assigned by the access point when the client sent none. */
  originalMessageId: string;
  replyTo: string | undefined;
  receiptType: ReceiptType;
}

const addresses = (field: AddressObject | AddressObject[] | undefined): string[] =>
  (Array.isArray(field) ? field : field ? [field] : [])
    .flatMap((object) => object.value)
    .flatMap((entry) => (entry.group ? entry.group : [entry]))
    .map((entry) => (entry.address ?? '').trim().toLowerCase())
    .filter(Boolean);

const HEADER_NAMES: Record<string, string> = {
  from: 'From', to: 'To', cc: 'Cc', bcc: 'Bcc', subject: 'Subject', originalMessageId: 'Message-ID', replyTo: 'Reply-To',
};

const RECEIPT_TYPES: ReceiptType[] = ['completa', 'breve', 'sintetica'];

export async function parseSubmission(raw: Buffer, serviceDomain: string): Promise<ParsedSubmission> {
  // Headers only: the body is certified as it is, never interpreted.
  const parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
  const requested = String(parsed.headers.get('x-tiporicevuta') ?? '').trim().toLowerCase();
  const replyTo = addresses(parsed.replyTo)[0];
  const submission: ParsedSubmission = {
    from: addresses(parsed.from),
    to: addresses(parsed.to),
    cc: addresses(parsed.cc),
    bcc: addresses(parsed.bcc),
    subject: parsed.subject ?? '',
    originalMessageId: parsed.messageId ?? `<${randomUUID()}@${serviceDomain}>`,
    replyTo,
    // Absent or unknown: the full receipt (RFC 6109 §3.3.2.1).
    receiptType: (RECEIPT_TYPES as string[]).includes(requested) ? (requested as ReceiptType) : 'completa',
  };
  // The engine's check at the door reads headers as the receiving point does; mailparser decodes a few more forms
  // (RFC 2231 parameters, charsets), and what it returns is what reaches PostgreSQL, which stores no NUL in text.
  for (const [field, value] of Object.entries(submission)) {
    if ([value].flat().some((text) => typeof text === 'string' && text.includes('\0'))) {
      throw invalidMessage(`The header field '${HEADER_NAMES[field] ?? field}' contains a NUL character, which RFC 5322 does not allow.`);
    }
  }
  return submission;
}
