import type { ReceiptType, RecipientType } from './daticert.ts';
import { readableRomeTime } from './time.ts';

/**
 * The readable part of every PEC system message, in Italian (spec §4, Appendix B). Wording follows the texts real
 * providers send (Aruba's for the types observed, the RFC 6109 templates translated for the others), because users
 * and support desks recognise them. Each text exists as text/plain and as an equivalent text/html (RFC 6109
 * §4.3.1: same information, no external resources, no active content), both ISO-8859-1.
 */

export interface ReadableText {
  /** ISO-8859-1 bytes with CRLF line ends. */
  plain: Buffer;
  /** ISO-8859-1 bytes with CRLF line ends. */
  html: Buffer;
}

/** The facts every text states about the original message. */
export interface TextFacts {
  at: Date;
  subject: string;
  sender: string;
  /** `type` is left out where it is unknown (an anomalous message was never classified). */
  recipients: ReadonlyArray<{ address: string; type?: RecipientType }>;
  /** The PEC msgid (or, for an anomaly, the received Message-ID); omitted when there is none. */
  identifier?: string;
  /** A sandbox (test mode) message: the text opens with `SANDBOX_NOTICE`. */
  sandbox?: boolean;
}

/**
 * The first line of the readable text of every message the engine produces in test mode. It sits inside the signed
 * content (unlike the `X-PEC-Partner-Mode: test` header), so a test receipt cannot be passed off as a real one by
 * removing a header; daticert.xml stays as the DTD defines it (its free text `gestore-emittente` names the sandbox).
 */
export const SANDBOX_NOTICE = 'ATTENZIONE: MESSAGGIO DI PROVA (SANDBOX) PRIVO DI VALORE LEGALE - generato in modalità test, non è una comunicazione di posta elettronica certificata';

interface Text {
  title: string;
  lines: string[];
}

const DATICERT_NOTE = "L'allegato daticert.xml contiene informazioni di servizio sulla trasmissione";
const POSTACERT_NOTE =
  'Il messaggio originale è incluso in allegato, per aprirlo cliccare sul file "postacert.eml" (nella webmail o in alcuni client di posta ' +
  "l'allegato potrebbe avere come nome l'oggetto del messaggio originale).";

const kindLabel = (type: RecipientType): string => (type === 'certificato' ? 'posta certificata' : 'posta ordinaria');
const labelled = (recipient: TextFacts['recipients'][number]): string =>
  recipient.type ? `${recipient.address} ("${kindLabel(recipient.type)}")` : recipient.address;
const identifierLine = (f: TextFacts): string[] => (f.identifier ? [`Identificativo del messaggio: ${f.identifier}`] : []);
const opening = (f: TextFacts, verb: 'il messaggio' | 'nel messaggio'): string[] => [
  `Il giorno ${readableRomeTime(f.at)} ${verb} con Oggetto`,
  `"${f.subject}" inviato da "${f.sender}"`,
];

export function acceptanceText(f: TextFacts): ReadableText {
  return render(f, {
    title: `Ricevuta di accettazione del messaggio indirizzato a ${f.recipients.map(labelled).join(', ')}`,
    lines: [
      ...opening(f, 'il messaggio'),
      'ed indirizzato a:',
      ...f.recipients.map(labelled),
      'è stato accettato dal sistema ed inoltrato.',
      ...identifierLine(f),
      DATICERT_NOTE,
    ],
  });
}

export function nonAcceptanceText(f: TextFacts, reason: string): ReadableText {
  return render(f, {
    title: 'Avviso di non accettazione',
    lines: [
      ...opening(f, 'nel messaggio'),
      'ed indirizzato a:',
      ...f.recipients.map(labelled),
      "è stato rilevato un problema che ne impedisce l'accettazione a causa di:",
      reason,
      'Il messaggio non è stato accettato.',
      ...identifierLine(f),
      DATICERT_NOTE,
    ],
  });
}

export function virusNonAcceptanceText(f: TextFacts, virus: string): ReadableText {
  return render(f, {
    title: 'Avviso di non accettazione per virus',
    lines: [
      ...opening(f, 'nel messaggio'),
      'ed indirizzato a:',
      ...f.recipients.map(labelled),
      "è stato rilevato un virus informatico che ne impedisce l'accettazione:",
      virus,
      'Il messaggio non è stato accettato.',
      ...identifierLine(f),
      DATICERT_NOTE,
    ],
  });
}

export function transportEnvelopeText(f: TextFacts): ReadableText {
  return render(f, {
    title: 'Questo è un Messaggio di Posta Certificata',
    lines: [
      `Il giorno ${readableRomeTime(f.at)} il messaggio con Oggetto`,
      `"${f.subject}" è stato inviato dal mittente "${f.sender}"`,
      'e indirizzato a:',
      ...f.recipients.map(labelled),
      POSTACERT_NOTE,
      DATICERT_NOTE,
      ...(f.identifier ? [`L'identificativo univoco di questo messaggio è: ${f.identifier}`] : []),
    ],
  });
}

export function takeChargeText(f: TextFacts): ReadableText {
  return render(f, {
    title: 'Ricevuta di presa in carico',
    lines: [
      ...opening(f, 'il messaggio'),
      'ed indirizzato a:',
      ...f.recipients.map(labelled),
      'è stato preso in carico dal gestore di posta certificata dei destinatari.',
      ...identifierLine(f),
      DATICERT_NOTE,
    ],
  });
}

export function anomalyText(f: TextFacts, error: string): ReadableText {
  return render(f, {
    title: 'Anomalia nel messaggio',
    lines: [
      `Il giorno ${readableRomeTime(f.at)} è stato ricevuto il messaggio con Oggetto`,
      `"${f.subject}" inviato da "${f.sender}"`,
      'e indirizzato a:',
      ...f.recipients.map(labelled),
      'Tali dati non sono stati certificati per il seguente errore:',
      error,
      'Il messaggio originale è incluso in allegato.',
      ...identifierLine(f),
    ],
  });
}

export function virusDetectionText(f: TextFacts, recipient: string, virus: string): ReadableText {
  return render(f, {
    title: 'Problema di sicurezza',
    lines: [
      ...opening(f, 'nel messaggio'),
      "e destinato all'utente",
      `"${recipient}"`,
      'è stato rilevato un virus informatico:',
      virus,
      'Il messaggio non è stato consegnato.',
      ...identifierLine(f),
      DATICERT_NOTE,
    ],
  });
}

export function virusNonDeliveryText(f: TextFacts, recipient: string, virus: string): ReadableText {
  return render(f, {
    title: 'Avviso di mancata consegna per virus',
    lines: [
      ...opening(f, 'nel messaggio'),
      "e destinato all'utente",
      `"${recipient}"`,
      'il gestore del destinatario ha rilevato un virus informatico:',
      virus,
      'Il messaggio non è stato consegnato.',
      ...identifierLine(f),
      DATICERT_NOTE,
    ],
  });
}

const VARIANT_NOTE: Record<ReceiptType, string> = {
  completa: POSTACERT_NOTE,
  breve:
    'Il messaggio originale è incluso in allegato (file "postacert.eml"), ma i suoi allegati sono sostituiti dai rispettivi hash ' +
    '(file con estensione ".hash").',
  sintetica: 'Questa ricevuta sintetica non include il messaggio originale.',
};

export function deliveryText(f: TextFacts, recipient: string, variant: ReceiptType): ReadableText {
  return render(f, {
    title: `Ricevuta di avvenuta consegna del messaggio indirizzato a ${recipient} "posta certificata"`,
    lines: [
      ...opening(f, 'il messaggio'),
      `ed indirizzato a "${recipient}"`,
      'è stato correttamente consegnato al destinatario.',
      ...identifierLine(f),
      VARIANT_NOTE[variant],
      DATICERT_NOTE,
    ],
  });
}

export function nonDeliveryText(f: TextFacts, recipient: string, errorDetail: string): ReadableText {
  return render(f, {
    title: 'Avviso di mancata consegna del messaggio',
    lines: [
      ...opening(f, 'nel messaggio'),
      "e destinato all'utente",
      `"${recipient}"`,
      'è stato rilevato il seguente errore:',
      errorDetail,
      'Il messaggio è stato rifiutato dal sistema.',
      ...identifierLine(f),
      DATICERT_NOTE,
    ],
  });
}

/** 12 h: a warning, delivery may still happen; 24 h: the transaction is over (spec §4.5). */
export type TimeoutStage = '12h' | '24h';

const TIMEOUT_OUTCOME: Record<TimeoutStage, string[]> = {
  '12h': [
    'non risulta consegnato entro le prime 12 ore dal suo invio.',
    'Non si esclude che il messaggio possa essere consegnato in seguito: in tal caso sarà inviata la relativa ricevuta di avvenuta consegna.',
    'Se nelle successive 12 ore non perverrà conferma della consegna, il sistema invierà un ulteriore avviso di mancata consegna.',
  ],
  '24h': [
    'non è stato consegnato entro 24 ore dal suo invio.',
    'La trasmissione è da considerarsi conclusa con esito negativo.',
  ],
};

export function deliveryTimeoutText(f: TextFacts, recipient: string, stage: TimeoutStage): ReadableText {
  return render(f, {
    title: `Avviso di mancata consegna per superamento del tempo massimo (${stage === '12h' ? '12' : '24'} ore)`,
    lines: [
      ...opening(f, 'il messaggio'),
      "e destinato all'utente",
      `"${recipient}"`,
      ...TIMEOUT_OUTCOME[stage],
      ...identifierLine(f),
      DATICERT_NOTE,
    ],
  });
}

const CRLF = '\r\n';

function render(f: Pick<TextFacts, 'sandbox'>, text: Text): ReadableText {
  // Values quoted into the text (subjects, error descriptions) may hold line breaks of any kind; all become CRLF.
  const lines = text.lines.flatMap((line) => line.split(/\r\n|\r|\n/));
  const banner = f.sandbox ? [SANDBOX_NOTICE, ''] : [];
  const plain = [...banner, `-- ${text.title} --`, '', ...lines].join(CRLF) + CRLF;
  const html = [
    '<!DOCTYPE html>',
    '<html>',
    '<head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">',
    `<title>${escapeHtml(text.title)}</title></head>`,
    '<body>',
    ...(f.sandbox ? [`<p><strong>${escapeHtml(SANDBOX_NOTICE)}</strong></p>`] : []),
    `<h3>${escapeHtml(text.title)}</h3>`,
    `<p>${lines.map(escapeHtml).join(`<br>${CRLF}`)}</p>`,
    '</body>',
    '</html>',
  ].join(CRLF) + CRLF;
  // ISO-8859-1 is mandated (RFC 6109 §4.3.1). Characters beyond it, possible in subjects, become numeric
  // references in HTML and '?' in plain text; daticert.xml, in UTF-8, keeps them exactly.
  return { plain: latin1(plain, () => '?'), html: latin1(html, (char) => `&#x${char.codePointAt(0)!.toString(16)};`) };
}

function escapeHtml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function latin1(value: string, replace: (char: string) => string): Buffer {
  return Buffer.from(value.replace(/[^\u0000-\u00ff]/gu, replace), 'latin1');
}
