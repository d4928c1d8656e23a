/**
 * The formal checks of the access point (spec §4.1, RFC 6109 §3.1.1). Pure: the caller parses the message and
 * decides what a failure produces (a non-acceptance notice, or an SMTP/HTTP refusal for what cannot be
 * answered with one).
 */

export interface SubmittedHeaders {
  /** Addresses of the From: field, lower-cased. */
  from: string[];
  to: string[];
  cc: string[];
  bcc: string[];
}

export interface SubmissionEnvelope {
  /** SMTP MAIL FROM (reverse-path). */
  mailFrom: string;
  /** SMTP RCPT TO (forward-paths). */
  rcptTo: string[];
}

export interface AccessLimits {
  maxRecipients: number;
  /** Size × number of recipients may not exceed this (the DM's "30 MB" is a floor a provider must allow). */
  maxTotalBytes: number;
}

export interface AccessViolation {
  code: 'from_missing' | 'from_not_single' | 'from_not_mailbox' | 'to_missing' | 'sender_mismatch' | 'recipients_mismatch' | 'bcc_present' | 'too_many_recipients' | 'too_large'
    /** Test mode: a recipient outside the sandbox (decided by the engine, which knows the domains). */
    | 'sandbox_recipient';
  /** Italian, for the readable text and `errore-esteso` of the non-acceptance notice. */
  descrizione: string;
}

const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/;
export const isAddress = (value: string): boolean => ADDRESS.test(value);

const sameSet = (a: string[], b: string[]): boolean => {
  const left = new Set(a.map((x) => x.toLowerCase()));
  const right = new Set(b.map((x) => x.toLowerCase()));
  return left.size === right.size && [...left].every((x) => right.has(x));
};

export function checkSubmission(input: {
  authenticatedAddress: string;
  headers: SubmittedHeaders;
  envelope: SubmissionEnvelope;
  sizeBytes: number;
  limits: AccessLimits;
}): AccessViolation[] {
  const { headers, envelope, limits } = input;
  const violations: AccessViolation[] = [];
  const from = headers.from;
  if (from.length === 0) violations.push({ code: 'from_missing', descrizione: 'manca il campo From' });
  else if (from.length > 1 || !isAddress(from[0]!)) violations.push({ code: 'from_not_single', descrizione: 'il campo From deve contenere un solo indirizzo valido' });
  else if (from[0] !== input.authenticatedAddress.toLowerCase()) {
    violations.push({ code: 'from_not_mailbox', descrizione: 'il mittente non corrisponde alla casella autenticata' });
  }
  if (headers.to.length === 0 || !headers.to.every(isAddress)) violations.push({ code: 'to_missing', descrizione: 'il campo To deve contenere uno o più indirizzi validi' });
  if (from.length === 1 && envelope.mailFrom.toLowerCase() !== from[0]) {
    violations.push({ code: 'sender_mismatch', descrizione: 'il mittente della busta SMTP (MAIL FROM) non coincide con il campo From' });
  }
  if (!sameSet(envelope.rcptTo, [...headers.to, ...headers.cc])) {
    violations.push({ code: 'recipients_mismatch', descrizione: 'i destinatari della busta SMTP (RCPT TO) non coincidono con i campi To e Cc' });
  }
  if (headers.bcc.length > 0) violations.push({ code: 'bcc_present', descrizione: 'il campo Bcc non è ammesso' });
  const recipients = new Set([...headers.to, ...headers.cc]).size;
  if (recipients > limits.maxRecipients) {
    violations.push({ code: 'too_many_recipients', descrizione: `il numero di destinatari (${recipients}) supera il massimo consentito (${limits.maxRecipients})` });
  }
  if (input.sizeBytes * Math.max(recipients, 1) > limits.maxTotalBytes) {
    violations.push({ code: 'too_large', descrizione: `la dimensione del messaggio moltiplicata per il numero di destinatari supera il limite di ${limits.maxTotalBytes} byte` });
  }
  return violations;
}
