import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import dnsPacket, { type Answer, type DecodedPacket, type OptAnswer, type Packet, type Question } from 'dns-packet';

/**
 * A small authoritative-style DNS server on loopback for tests, so the API's DNS checks go through a real
 * resolver (c-ares, via node:dns) and the real wire format instead of a mocked lookup function.
 */

export type ServedType = 'MX' | 'TXT' | 'A' | 'CNAME';
export type FailureMode = 'servfail' | 'refused' | 'timeout';

export interface MxRecord {
  exchange: string;
  priority: number;
}

/** One TXT record: a string (split into ≤255-byte chunks on the wire), or explicit chunks. */
export type TxtRecord = string | readonly string[];

export interface RecordsByType {
  MX: MxRecord;
  TXT: TxtRecord;
  /** An IPv4 address. */
  A: string;
  /** The target name; only the first CNAME of a name is followed. */
  CNAME: string;
}

export interface LoggedQuery {
  /** Lower case, without trailing dot. */
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
}

export interface DnsServer {
  /** `127.0.0.1:<port>`, the form `Resolver.setServers` accepts. */
  readonly address: string;
  readonly port: number;
  /** Every question received, in order (a truncated UDP answer retried over TCP appears twice). */
  readonly queries: LoggedQuery[];
  /** Replaces the records of that name and type; an empty list leaves the name existing without them (NODATA). */
  set<T extends ServedType>(name: string, type: T, records: readonly RecordsByType[T][]): void;
  /** Forgets one name (records and failure mode), or everything including the query log. */
  clear(name?: string): void;
  /** Makes every query for that exact name fail; `timeout` never answers. */
  fail(name: string, mode: FailureMode): void;
  heal(name: string): void;
  close(): Promise<void>;
}

const RCODE_NOERROR = 0;
const RCODE_FORMERR = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const RCODE_REFUSED = 5;
/** Without EDNS a UDP answer may not exceed 512 bytes (RFC 1035); with it, 1232 is the size resolvers agree on today. */
const PLAIN_UDP_LIMIT = 512;
const EDNS_UDP_LIMIT = 1232;
const TXT_CHUNK_BYTES = 255;
const MAX_CNAME_HOPS = 8;
const TTL_SECONDS = 0; // so no resolver cache can hide a later set()/fail() from the next lookup

type StoredRecords = { [T in ServedType]?: RecordsByType[T][] };

function normalizeName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

/** Splits at character boundaries so that no chunk ends in the middle of a UTF-8 sequence. */
function splitTxt(value: string): Buffer[] {
  const chunks: Buffer[] = [];
  let current: Buffer[] = [];
  let currentBytes = 0;
  for (const character of value) {
    const bytes = Buffer.from(character);
    if (currentBytes + bytes.length > TXT_CHUNK_BYTES) {
      chunks.push(Buffer.concat(current));
      current = [];
      currentBytes = 0;
    }
    current.push(bytes);
    currentBytes += bytes.length;
  }
  chunks.push(Buffer.concat(current)); // an empty string is still one (empty) chunk
  return chunks;
}

function txtChunks(record: TxtRecord): Buffer[] {
  if (typeof record === 'string') return splitTxt(record);
  return record.map((chunk) => {
    const bytes = Buffer.from(chunk);
    if (bytes.length > TXT_CHUNK_BYTES) throw new Error(`A TXT chunk may not exceed ${TXT_CHUNK_BYTES} bytes; got ${bytes.length}.`);
    return bytes;
  });
}

export interface DnsServerOptions {
  /** A fixed port (UDP and TCP); 0 or absent picks a free one. */
  port?: number;
}

export async function startDnsServer(options: DnsServerOptions = {}): Promise<DnsServer> {
  const zone = new Map<string, StoredRecords>();
  const failures = new Map<string, FailureMode>();
  const queries: LoggedQuery[] = [];

  /** A name exists if records were set for it or below it (an "empty non-terminal" answers NODATA, RFC 8020). */
  function nameExists(name: string): boolean {
    if (zone.has(name)) return true;
    for (const known of zone.keys()) if (known.endsWith(`.${name}`)) return true;
    return false;
  }

  function recordsOf(owner: string, name: string, type: string): Answer[] {
    const stored = zone.get(name);
    const base = { name: owner, ttl: TTL_SECONDS, class: 'IN' as const };
    switch (type) {
      case 'MX':
        return (stored?.MX ?? []).map((r) => ({ ...base, type: 'MX' as const, data: { exchange: r.exchange, preference: r.priority } }));
      case 'TXT':
        return (stored?.TXT ?? []).map((r) => ({ ...base, type: 'TXT' as const, data: txtChunks(r) }));
      case 'A':
        return (stored?.A ?? []).map((address) => ({ ...base, type: 'A' as const, data: address }));
      case 'CNAME':
        return (stored?.CNAME ?? []).map((target) => ({ ...base, type: 'CNAME' as const, data: target }));
      default:
        return [];
    }
  }

  /** Like an authoritative server: follows CNAMEs that stay inside what this server knows. */
  function lookUp(question: Question): { rcode: number; answers: Answer[] } {
    const answers: Answer[] = [];
    let owner = question.name; // echo the asker's spelling, as real servers do
    let name = normalizeName(owner);
    if (!nameExists(name)) return { rcode: RCODE_NXDOMAIN, answers };
    for (let hop = 0; hop < MAX_CNAME_HOPS; hop++) {
      const target = zone.get(name)?.CNAME?.[0];
      if (question.type === 'CNAME' || target === undefined) {
        answers.push(...recordsOf(owner, name, question.type));
        break;
      }
      answers.push(...recordsOf(owner, name, 'CNAME'));
      if (!zone.has(normalizeName(target))) break;
      owner = target;
      name = normalizeName(target);
    }
    return { rcode: RCODE_NOERROR, answers };
  }

  /** The encoded answer, or null when the server must stay silent. */
  function respond(message: Buffer, transport: 'udp' | 'tcp'): Buffer | null {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return null; // not DNS: a real server drops it too
    }
    if (query.type !== 'query') return null;
    const question = query.questions?.[0];
    const clientOpt = query.additionals?.find((a): a is OptAnswer => a.type === 'OPT');
    const reply = (rcode: number, answers: Answer[]): Buffer => {
      const packet: Packet = {
        type: 'response',
        id: query.id ?? 0,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode,
        questions: query.questions ?? [],
        answers,
        // Answering EDNS queries with EDNS tells the resolver it may receive answers larger than 512 bytes over UDP.
        additionals: clientOpt
          ? [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_LIMIT, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }]
          : [],
      };
      const encoded = dnsPacket.encode(packet);
      const udpLimit = clientOpt ? Math.max(PLAIN_UDP_LIMIT, Math.min(clientOpt.udpPayloadSize, EDNS_UDP_LIMIT)) : PLAIN_UDP_LIMIT;
      if (transport === 'tcp' || encoded.length <= udpLimit) return encoded;
      // Too big for UDP: set TC without answers, so the resolver asks again over TCP.
      return dnsPacket.encode({ ...packet, flags: (packet.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, answers: [] });
    };
    if (!question) return reply(RCODE_FORMERR, []);
    const name = normalizeName(question.name);
    queries.push({ name, type: question.type, transport });
    switch (failures.get(name)) {
      case 'timeout':
        return null;
      case 'servfail':
        return reply(RCODE_SERVFAIL, []);
      case 'refused':
        return reply(RCODE_REFUSED, []);
    }
    const { rcode, answers } = lookUp(question);
    return reply(rcode, answers);
  }

  function onUdpMessage(udp: UdpSocket, message: Buffer, peer: RemoteInfo): void {
    const answer = respond(message, 'udp');
    // A client that went away is its own problem; the callback keeps a failed send from crashing the test run.
    if (answer) udp.send(answer, peer.port, peer.address, () => {});
  }

  const connections = new Set<Socket>();
  function onTcpConnection(socket: Socket): void {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => socket.destroy());
    // Over TCP each message is preceded by its length in two bytes (RFC 1035 §4.2.2); several may share a segment.
    let pending = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      pending = Buffer.concat([pending, data]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const length = pending.readUInt16BE(0);
        const answer = respond(pending.subarray(2, 2 + length), 'tcp');
        pending = pending.subarray(2 + length);
        if (answer) {
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(answer.length);
          socket.write(Buffer.concat([prefix, answer]));
        }
      }
    });
  }

  const { udp, tcp, port } = await listenOnSamePort(onUdpMessage, onTcpConnection, options.port ?? 0);

  function set<T extends ServedType>(name: string, type: T, records: readonly RecordsByType[T][]): void {
    const key = normalizeName(name);
    const stored: StoredRecords = zone.get(key) ?? {};
    stored[type] = [...records] as StoredRecords[T];
    zone.set(key, stored);
  }

  return {
    address: `127.0.0.1:${port}`,
    port,
    queries,
    set,
    clear(name?: string) {
      if (name === undefined) {
        zone.clear();
        failures.clear();
        queries.length = 0;
        return;
      }
      zone.delete(normalizeName(name));
      failures.delete(normalizeName(name));
    },
    fail(name, mode) {
      failures.set(normalizeName(name), mode);
    },
    heal(name) {
      failures.delete(normalizeName(name));
    },
    async close() {
      for (const socket of connections) socket.destroy();
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        new Promise<void>((resolve) => tcp.close(() => resolve())),
      ]);
    },
  };
}

/** UDP and TCP on one random free port; retried because the UDP side of a free TCP port may be taken. */
async function listenOnSamePort(
  onUdpMessage: (udp: UdpSocket, message: Buffer, peer: RemoteInfo) => void,
  onTcpConnection: (socket: Socket) => void,
  fixedPort: number,
): Promise<{ udp: UdpSocket; tcp: Server; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const tcp = createServer(onTcpConnection);
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(fixedPort, '127.0.0.1', () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    const port = (tcp.address() as AddressInfo).port;
    const udp = createSocket('udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, '127.0.0.1', () => {
          udp.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      udp.close();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      if (fixedPort !== 0 || attempt >= 10 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      continue;
    }
    udp.on('message', (message, peer) => onUdpMessage(udp, message, peer));
    return { udp, tcp, port };
  }
}
