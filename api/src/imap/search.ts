/// <reference path="../types/mail-libs.d.ts" />
import libmime from 'libmime';
import type { ImapAttribute } from 'imapflow/lib/handler/types.js';
import type { MessageState } from '../mailstore/messages.ts';
import { decodedBody, parseMime, type MimeNode } from './mime.ts';
import { setContains } from './sequence.ts';
import { fromUtf8, parseDate } from './wire.ts';

/**
 * SEARCH criteria (RFC 9051 §6.4.4) compiled to a predicate over one message. Flag, date, size and set keys need
 * only the message's row; header and text keys need its bytes, which the session loads only when `needsContent`.
 */
export interface SearchFacts {
  seq: number;
  state: MessageState;
  size: number;
  storedAt: Date;
  /** Binary string; present when the criteria need it. */
  content: string | null;
}

export type Predicate = (facts: SearchFacts, lazy: LazyMessage) => boolean;

export class SearchSyntaxError extends Error {}
export class BadCharsetError extends Error {}

/** Parsed views of one message, computed only if a criterion asks. */
export class LazyMessage {
  #tree: MimeNode | null = null;
  #text: string | null = null;
  constructor(private readonly content: string) {}
  get tree(): MimeNode {
    return (this.#tree ??= parseMime(this.content));
  }
  /** The decoded values of a header field of the top-level message, joined. */
  header(name: string): string {
    const wanted = name.toLowerCase();
    return this.tree.entity.fields
      .filter((f) => f.name.toLowerCase() === wanted)
      .map((f) => decodeValue(f.raw.slice(f.raw.indexOf(':') + 1)))
      .join('\n');
  }
  get headerText(): string {
    return decodeValue(this.tree.entity.head);
  }
  /** Every text part decoded to Unicode (charset and transfer encoding undone). */
  get bodyText(): string {
    if (this.#text !== null) return this.#text;
    const texts: string[] = [];
    const walk = (node: MimeNode, depth: number) => {
      if (depth > 30) return;
      if (node.children.length) node.children.forEach((child) => walk(child, depth + 1));
      else if (node.type === 'text') {
        const decoded = decodedBody(this.content, node);
        if (decoded !== null) texts.push(decodeCharset(decoded, node.params.charset ?? 'us-ascii'));
      }
    };
    walk(this.tree, 0);
    return (this.#text = texts.join('\n'));
  }
}

function decodeValue(binary: string): string {
  const unfolded = binary.replace(/\r\n(?=[ \t])/g, '');
  try {
    return libmime.decodeWords(fromUtf8(unfolded));
  } catch {
    return fromUtf8(unfolded);
  }
}

function decodeCharset(binary: string, charset: string): string {
  const bytes = Buffer.from(binary, 'latin1');
  try {
    return (libmime as unknown as { decode(buf: Buffer, charset: string): string }).decode(bytes, charset);
  } catch {
    return bytes.toString('utf8');
  }
}

const contains = (haystack: string, needle: string) => haystack.toLowerCase().includes(needle.toLowerCase());

const dayOf = (date: Date) => Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());

export interface CompiledSearch {
  predicate: Predicate;
  needsContent: boolean;
  /** The MODSEQ criterion was used: the answer carries the highest MODSEQ (RFC 7162 §3.1.5). */
  usesModseq: boolean;
}

/**
 * Compiles the criteria. `maxSeq` and `maxUid` are what * stands for in sets. `charset` is what the client named;
 * strings are compared in Unicode, so only UTF-8 and US-ASCII are accepted (BADCHARSET otherwise).
 */
export function compileSearch(attributes: readonly ImapAttribute[], maxSeq: number, maxUid: number): CompiledSearch {
  let at = 0;
  let needsContent = false;
  let usesModseq = false;
  const next = (): ImapAttribute => {
    if (at >= attributes.length) throw new SearchSyntaxError('Search criteria end too early');
    return attributes[at++]!;
  };
  const text = (): string => {
    const node = next();
    if (!node || Array.isArray(node) || node.value === undefined || node.value === null) throw new SearchSyntaxError('A search key expects a string');
    const value = node.value;
    return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
  };
  const number = (): number => {
    const value = text();
    if (!/^\d{1,19}$/.test(value)) throw new SearchSyntaxError(`Expected a number, got ${value.slice(0, 20)}`);
    return Number(value);
  };
  const date = (): number => {
    const parsed = parseDate(text());
    if (!parsed) throw new SearchSyntaxError('Expected a date like 1-Feb-2026');
    return parsed.getTime();
  };
  const sentDay = (lazy: LazyMessage): number | null => {
    const value = lazy.header('date');
    const parsed = value ? new Date(value) : null;
    return parsed && !Number.isNaN(parsed.getTime()) ? dayOf(parsed) : null;
  };
  const contentKey = (p: Predicate): Predicate => {
    needsContent = true;
    return p;
  };

  const key = (): Predicate => {
    const node = next();
    if (Array.isArray(node)) {
      const inner = compileSearch(node, maxSeq, maxUid);
      needsContent ||= inner.needsContent;
      usesModseq ||= inner.usesModseq;
      return inner.predicate;
    }
    if (!node || node.value === undefined || node.value === null) throw new SearchSyntaxError('Invalid search key');
    const name = String(node.value).toUpperCase();
    if (node.type === 'SEQUENCE' || /^[0-9*:,]+$/.test(name)) {
      const inSet = setContains(name, maxSeq);
      return (f) => inSet(f.seq);
    }
    switch (name) {
      case 'ALL': return () => true;
      case 'ANSWERED': return (f) => f.state.answered;
      case 'DELETED': return (f) => f.state.deleted;
      case 'DRAFT': return (f) => f.state.draft;
      case 'FLAGGED': return (f) => f.state.flagged;
      case 'SEEN': return (f) => f.state.seen;
      case 'UNANSWERED': return (f) => !f.state.answered;
      case 'UNDELETED': return (f) => !f.state.deleted;
      case 'UNDRAFT': return (f) => !f.state.draft;
      case 'UNFLAGGED': return (f) => !f.state.flagged;
      case 'UNSEEN': return (f) => !f.state.seen;
      // No message is \Recent in this store (IMAP4rev2 dropped the flag): NEW is UNSEEN and RECENT, nothing.
      case 'NEW': return (f) => !f.state.seen;
      case 'OLD': return () => true;
      case 'RECENT': return () => false;
      case 'KEYWORD': { const k = text().toLowerCase(); return (f) => f.state.keywords.some((x) => x.toLowerCase() === k); }
      case 'UNKEYWORD': { const k = text().toLowerCase(); return (f) => !f.state.keywords.some((x) => x.toLowerCase() === k); }
      case 'LARGER': { const n = number(); return (f) => f.size > n; }
      case 'SMALLER': { const n = number(); return (f) => f.size < n; }
      case 'BEFORE': { const d = date(); return (f) => dayOf(f.storedAt) < d; }
      case 'ON': { const d = date(); return (f) => dayOf(f.storedAt) === d; }
      case 'SINCE': { const d = date(); return (f) => dayOf(f.storedAt) >= d; }
      case 'SENTBEFORE': { const d = date(); return contentKey((_f, l) => (sentDay(l) ?? Infinity) < d); }
      case 'SENTON': { const d = date(); return contentKey((_f, l) => sentDay(l) === d); }
      case 'SENTSINCE': { const d = date(); return contentKey((_f, l) => (sentDay(l) ?? -Infinity) >= d); }
      case 'FROM': case 'TO': case 'CC': case 'BCC': case 'SUBJECT': {
        const needle = text();
        const field = name.toLowerCase();
        return contentKey((_f, l) => contains(l.header(field), needle));
      }
      case 'HEADER': {
        const field = text();
        const needle = text();
        return contentKey((_f, l) => (needle === '' ? l.tree.entity.fields.some((x) => x.name.toLowerCase() === field.toLowerCase()) : contains(l.header(field), needle)));
      }
      case 'BODY': { const needle = text(); return contentKey((_f, l) => contains(l.bodyText, needle)); }
      case 'TEXT': { const needle = text(); return contentKey((_f, l) => contains(l.headerText, needle) || contains(l.bodyText, needle)); }
      case 'UID': { const inSet = setContains(text(), maxUid); return (f) => inSet(f.state.uid); }
      case 'MODSEQ': {
        usesModseq = true;
        // Optional entry name and type (RFC 7162 §3.1.5): the store keeps one MODSEQ per message, so both are ignored.
        let value = text();
        if (!/^\d+$/.test(value)) {
          text();
          value = text();
        }
        if (!/^\d{1,19}$/.test(value)) throw new SearchSyntaxError('MODSEQ expects a number');
        const n = Number(value);
        return (f) => f.state.modseq >= n;
      }
      case 'NOT': { const inner = key(); return (f, l) => !inner(f, l); }
      case 'OR': { const a = key(); const b = key(); return (f, l) => a(f, l) || b(f, l); }
      default:
        throw new SearchSyntaxError(`Unknown search key ${name.slice(0, 30)}`);
    }
  };

  const all: Predicate[] = [];
  while (at < attributes.length) all.push(key());
  if (all.length === 0) throw new SearchSyntaxError('SEARCH needs criteria');
  return { predicate: (f, l) => all.every((p) => p(f, l)), needsContent, usesModseq };
}

/** Strips CHARSET and RETURN (ESEARCH, RFC 4731) from the front of the arguments. */
export function searchPrologue(attributes: readonly ImapAttribute[]): { criteria: ImapAttribute[]; returns: string[] | null } {
  let at = 0;
  let returns: string[] | null = null;
  const atom = (i: number) => {
    const node = attributes[i];
    return node && !Array.isArray(node) && typeof node.value === 'string' ? node.value.toUpperCase() : '';
  };
  if (atom(at) === 'RETURN' && Array.isArray(attributes[at + 1])) {
    returns = (attributes[at + 1] as ImapAttribute[]).map((n) => (n && !Array.isArray(n) ? String(n.value).toUpperCase() : ''));
    at += 2;
  }
  if (atom(at) === 'CHARSET') {
    const charset = atom(at + 1);
    if (!['UTF-8', 'US-ASCII', 'UTF8'].includes(charset)) throw new BadCharsetError(charset);
    at += 2;
  }
  return { criteria: attributes.slice(at), returns };
}
