import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DtdValidator, XmlDocument, XmlDtd } from 'libxml2-wasm';
import { simpleParser } from 'mailparser';
import type { Test } from 'tap';
import { certificateSha1Hex, createProviderIdentity } from '../../api/src/pec/identity.ts';
import { inspectPecMessage } from '../../api/src/pec/inspect.ts';
import { toLdif } from '../../api/src/pec/provider-index.ts';
import { createSigner } from '../../api/src/pec/smime.ts';

const run = promisify(execFile);
/** The DTD of the technical rules (DM 2 Nov 2005 annex), as distributed. */
const DTD_PATH = new URL('../fixtures/pec/daticert.dtd', import.meta.url);

/** `openssl smime -verify` against a CA: the independent check of every signature the engine makes. */
export async function opensslVerify(message: Buffer, caPem: string): Promise<{ ok: boolean; output: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pec-verify-'));
  try {
    await writeFile(path.join(dir, 'ca.pem'), caPem);
    await writeFile(path.join(dir, 'message.eml'), message);
    const result = await run('openssl', ['smime', '-verify', '-CAfile', path.join(dir, 'ca.pem'), '-in', path.join(dir, 'message.eml'), '-out', path.join(dir, 'content')])
      .then(({ stderr }) => ({ ok: true, output: stderr }), (error: { stderr?: string }) => ({ ok: false, output: error.stderr ?? String(error) }));
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

let validator: DtdValidator | undefined;

/**
 * Validates a daticert.xml against the DTD of the technical rules with libxml2 (the library behind `xmllint`,
 * compiled to WebAssembly: the same validator as `xmllint --dtdvalid`, installed from npm like everything else).
 */
export async function validateDaticert(xml: string): Promise<{ valid: boolean; errors: string[] }> {
  validator ??= new DtdValidator(XmlDtd.fromBuffer(await readFile(DTD_PATH)));
  const document = XmlDocument.fromString(xml);
  try {
    validator.validate(document);
    return { valid: true, errors: [] };
  } catch (error) {
    return { valid: false, errors: [(error as Error).message] };
  } finally {
    document.dispose();
  }
}

export interface ParsedPec {
  headers: Map<string, string>;
  /** The content types of the signed multipart/mixed's parts, in order (nested alternative flattened as one). */
  parts: string[];
  daticert: string | null;
  postacert: Buffer | null;
  text: string;
}

/** Reads a system message as a mail client would: top-level headers, parts, daticert.xml and postacert.eml. */
export async function parsePec(raw: Buffer): Promise<ParsedPec> {
  const parsed = await simpleParser(raw);
  const headers = new Map<string, string>();
  for (const line of parsed.headerLines) headers.set(line.key, line.line.slice(line.line.indexOf(':') + 1).replace(/\r?\n(?=[ \t])/g, '').trim());
  const daticert = parsed.attachments.find((a) => a.filename === 'daticert.xml');
  // mailparser merges an inline message/rfc822 into the parent instead of listing it; the engine's MIME walker
  // (itself tested against real providers' messages) hands over postacert.eml as it is.
  const postacert = (await inspectPecMessage(raw)).postacert;
  return {
    headers,
    parts: parsed.attachments.map((a) => `${a.contentType}${a.filename ? `; ${a.filename}` : ''}`),
    daticert: daticert ? daticert.content.toString('utf8') : null,
    postacert: postacert ?? null,
    text: parsed.text ?? '',
  };
}

/** A loopback port nothing listens on: a next hop that refuses every connection. */
export async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Another provider, listed in a provider index file with its own certificate, whose server cannot be reached:
 * messages to it wait in the queue, and its receipts are made with `signer` and handed in by the test. Pass
 * `indexFile` as PEC_PROVIDER_INDEX_FILE and route `provider.domain` to `closedPort` with PEC_SMTP_ROUTES.
 */
export async function unreachableProvider(t: Test) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pec-remote-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const provider = { name: 'Remota PEC S.p.A.', domain: 'pec.remota.it' };
  const identity = await createProviderIdentity({ providerName: provider.name, domain: provider.domain, now: new Date('2026-11-01T00:00:00Z') });
  const der = Buffer.from(identity.certificatePem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const indexFile = path.join(dir, 'index.ldif');
  await writeFile(indexFile, toLdif({
    dn: `providerName=${provider.name},o=postacert`, providerName: provider.name, managedDomains: [provider.domain],
    mailReceipt: identity.serviceAddress, certificates: [der], certificateHashes: [certificateSha1Hex(der)],
  }));
  return { provider, identity, signer: await createSigner(identity), indexFile, closedPort: await closedPort() };
}
