import mimeFuncs from 'nodemailer/lib/mime-funcs/index.js';
import type { Provider } from './transaction.ts';

/**
 * The header literals of PEC system messages (spec §3, §4, §12). They are matched byte for byte by clients and by
 * other providers, so each exists once, here.
 */

/** Header fields in order, values unfolded and ready for the wire (non-ASCII text already RFC 2047-encoded). */
export type HeaderList = Array<[name: string, value: string]>;

/** Subject prefixes, each followed by the original subject (spec §3; single space in `SUP. TEMPO MASSIMO`, §12). */
export const SUBJECT_PREFIX = {
  acceptance: 'ACCETTAZIONE: ',
  nonAcceptance: 'AVVISO DI NON ACCETTAZIONE: ',
  virusNonAcceptance: 'AVVISO DI NON ACCETTAZIONE PER VIRUS: ',
  transportEnvelope: 'POSTA CERTIFICATA: ',
  deliveryTimeout: 'AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: ',
  takeCharge: 'PRESA IN CARICO: ',
  anomalyEnvelope: 'ANOMALIA MESSAGGIO: ',
  virusDetection: 'PROBLEMA DI SICUREZZA: ',
  virusNonDelivery: 'AVVISO DI MANCATA CONSEGNA PER VIRUS: ',
  delivery: 'CONSEGNA: ',
  nonDelivery: 'AVVISO DI MANCATA CONSEGNA: ',
} as const;

/**
 * Marks every message the engine produces in test mode (sandbox): envelopes, receipts and notices. Outer header
 * fields are not covered by the S/MIME signature, so the signed readable text says it too (`SANDBOX_NOTICE`), and
 * the sandbox signs with its own certificate (subject `… (SANDBOX)`), which is in no provider index.
 */
export const MODE_HEADER = 'X-PEC-Partner-Mode';

/** `X-PEC-Partner-Mode: test` for a sandbox provider; nothing for the live one. */
export const modeHeaders = (provider: Provider): HeaderList => (provider.sandbox ? [[MODE_HEADER, 'test']] : []);

/** The provider's service address: sender of every system message, and the address its certificate names. */
export const serviceAddress = (provider: Provider): string => `posta-certificata@${provider.domain}`;

export const angleBrackets = (id: string): string => `<${id}>`;

/** Header text is one line: a line break inside a value would end the field. */
const oneLine = (value: string): string => value.replace(/[\r\n]+/g, ' ');

/** Prefix + original subject, with the non-ASCII words RFC 2047-encoded (UTF-8, Q). */
export function prefixedSubject(prefix: string, originalSubject: string): string {
  return mimeFuncs.encodeWords(oneLine(prefix + originalSubject), 'Q', 52);
}

/**
 * `"Per conto di: <sender>" <posta-certificata@domain>` (spec §4.4, §12): envelopes come from the provider, whose
 * certificate must match From, and name the author in the display name.
 */
export function onBehalfOf(sender: string, provider: Provider): string {
  const name = oneLine(`Per conto di: ${sender}`);
  const display = /^[\x20-\x7e]*$/.test(name) ? `"${name.replace(/[\\"]/g, '\\$&')}"` : mimeFuncs.encodeWord(name, 'Q', 52);
  return `${display} <${serviceAddress(provider)}>`;
}
