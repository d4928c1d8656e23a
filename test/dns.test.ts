import { Resolver } from 'node:dns/promises';
import t, { type Test } from 'tap';
import { checkDomainRecords, type DnsCheckConfig, type RecordCheck } from '../api/src/modules/domains/dns-check.ts';
import { startDnsServer, type DnsServer } from './helpers/dns-server.ts';

const MX_HOSTS = ['mx1.pec.example.it', 'mx2.pec.example.it'];
const DOMAIN = 'studio-verdi.it';
const TXT_NAME = `_pec-verify.${DOMAIN}`;
const TOKEN = 'pec-verify=Q2x9c7VbKp0dWm3sZr8aTn5eYh1uLf6g';
const expected = { domain: DOMAIN, mxHosts: MX_HOSTS, txtName: TXT_NAME, txtValue: TOKEN };

async function startServer(t: Test): Promise<{ dns: DnsServer; config: DnsCheckConfig }> {
  const dns = await startDnsServer();
  t.teardown(() => dns.close());
  // Short timeout and a single try keep the timeout cases fast.
  return { dns, config: { servers: [dns.address], timeoutMs: 300, tries: 1 } };
}

function publishCorrectRecords(dns: DnsServer): void {
  dns.set(DOMAIN, 'MX', [{ exchange: MX_HOSTS[0]!, priority: 10 }, { exchange: MX_HOSTS[1]!, priority: 20 }]);
  dns.set(TXT_NAME, 'TXT', [TOKEN]);
}

function byType(records: RecordCheck[]): { MX: RecordCheck; TXT: RecordCheck } {
  return { MX: records.find((r) => r.type === 'MX')!, TXT: records.find((r) => r.type === 'TXT')! };
}

t.test('checkDomainRecords: what is published decides each record', async (t) => {
  const { dns, config } = await startServer(t);
  const check = async () => {
    const result = await checkDomainRecords(config, expected);
    return { ok: result.ok, ...byType(result.records) };
  };

  t.test('correct MX and TXT pass', async (t) => {
    dns.clear();
    publishCorrectRecords(dns);
    const result = await check();
    t.equal(result.ok, true);
    t.same(result.MX, {
      type: 'MX', name: DOMAIN, expected: MX_HOSTS, found: MX_HOSTS, status: 'ok',
      detail: `MX of ${DOMAIN} points only to this provider's inbound hosts (mx1.pec.example.it, mx2.pec.example.it).`,
    });
    t.same(result.TXT, {
      type: 'TXT', name: TXT_NAME, expected: [TOKEN], found: [TOKEN], status: 'ok',
      detail: `TXT at ${TXT_NAME} holds the expected verification value.`,
    });
  });

  t.test('one of the inbound hosts is enough, and other TXT records beside the token do not matter', async (t) => {
    dns.clear();
    dns.set(DOMAIN, 'MX', [{ exchange: MX_HOSTS[1]!, priority: 5 }]);
    dns.set(TXT_NAME, 'TXT', ['v=spf1 -all', `  ${TOKEN} `]);
    const result = await check();
    t.equal(result.ok, true);
    t.same(result.MX.found, [MX_HOSTS[1]]);
    t.same(result.TXT.found, ['v=spf1 -all', `  ${TOKEN} `], 'found shows values as published; the comparison trims');
  });

  t.test('no MX at an existing domain is missing', async (t) => {
    dns.clear();
    dns.set(TXT_NAME, 'TXT', [TOKEN]);
    dns.set(DOMAIN, 'A', ['192.0.2.10']);
    const result = await check();
    t.equal(result.ok, false);
    t.equal(result.MX.status, 'missing');
    t.same(result.MX.found, []);
    t.equal(result.MX.detail, `${DOMAIN} has no MX records; publish MX records pointing to mx1.pec.example.it, mx2.pec.example.it.`);
    t.equal(result.TXT.status, 'ok');
  });

  t.test('a foreign MX beside a correct one is a mismatch naming the foreign host', async (t) => {
    dns.clear();
    publishCorrectRecords(dns);
    dns.set(DOMAIN, 'MX', [{ exchange: 'Mail.Other.NET.', priority: 20 }, { exchange: MX_HOSTS[0]!, priority: 10 }]);
    const result = await check();
    t.equal(result.ok, false);
    t.equal(result.MX.status, 'mismatch');
    t.same(result.MX.found, ['mx1.pec.example.it', 'mail.other.net'], 'found is ordered by priority, names normalised');
    t.equal(
      result.MX.detail,
      `MX of ${DOMAIN} points to mail.other.net, which is not one of this provider's inbound hosts (mx1.pec.example.it, mx2.pec.example.it); ` +
        'every MX must point to this provider, or certified mail could be delivered elsewhere.',
    );
    t.equal(result.TXT.status, 'ok');

    dns.set(DOMAIN, 'MX', [{ exchange: 'a.other.net', priority: 10 }, { exchange: 'b.other.net', priority: 20 }]);
    const two = await check();
    t.equal(two.MX.status, 'mismatch');
    t.match(two.MX.detail, /points to a\.other\.net, b\.other\.net, which are not among this provider's inbound hosts/);
  });

  t.test('a null MX (domain accepts no mail) is a mismatch', async (t) => {
    dns.clear();
    publishCorrectRecords(dns);
    dns.set(DOMAIN, 'MX', [{ exchange: '.', priority: 0 }]);
    const result = await check();
    t.equal(result.MX.status, 'mismatch');
    t.same(result.MX.found, ['.']);
    t.match(result.MX.detail, /points to \., which is not one of/);
  });

  t.test('no TXT at the verification name is missing', async (t) => {
    dns.clear();
    publishCorrectRecords(dns);
    dns.set(TXT_NAME, 'TXT', []);
    const result = await check();
    t.equal(result.ok, false);
    t.equal(result.MX.status, 'ok');
    t.same(result.TXT, {
      type: 'TXT', name: TXT_NAME, expected: [TOKEN], found: [], status: 'missing',
      detail: `${TXT_NAME} has no TXT record; publish one with the value ${TOKEN}.`,
    });
    dns.clear(TXT_NAME);
    t.equal((await check()).TXT.status, 'missing', 'also when the name does not exist at all');
  });

  t.test('a different TXT value is a mismatch listing what was found', async (t) => {
    dns.clear();
    publishCorrectRecords(dns);
    dns.set(TXT_NAME, 'TXT', ['pec-verify=old-token', TOKEN.toLowerCase()]);
    const result = await check();
    t.equal(result.ok, false);
    t.equal(result.TXT.status, 'mismatch', 'the token is case-sensitive');
    t.same(result.TXT.found, ['pec-verify=old-token', TOKEN.toLowerCase()]);
    t.equal(
      result.TXT.detail,
      `TXT at ${TXT_NAME} holds "pec-verify=old-token", "${TOKEN.toLowerCase()}" but not the expected value ${TOKEN}; publish a TXT record with exactly that value.`,
    );
  });

  t.test('a TXT value split into several strings is joined', async (t) => {
    dns.clear();
    publishCorrectRecords(dns);
    dns.set(TXT_NAME, 'TXT', [[TOKEN.slice(0, 15), TOKEN.slice(15)]]);
    const split = await check();
    t.equal(split.TXT.status, 'ok', 'split by the customer (as some DNS control panels do)');
    t.same(split.TXT.found, [TOKEN]);

    // Longer than 255 bytes: the server must send it in chunks, and the whole answer no longer fits in one UDP datagram.
    const longValue = `${TOKEN};${'x'.repeat(1500)}`;
    dns.set(TXT_NAME, 'TXT', [longValue]);
    const long = await checkDomainRecords(config, { ...expected, txtValue: longValue });
    t.equal(byType(long.records).TXT.status, 'ok');
    t.same(byType(long.records).TXT.found, [longValue]);
    t.ok(dns.queries.some((q) => q.name === TXT_NAME && q.transport === 'tcp'), 'the truncated UDP answer was retried over TCP');

    dns.set(TXT_NAME, 'TXT', [`${'y'.repeat(300)}`]);
    const mismatch = byType((await checkDomainRecords(config, expected)).records).TXT;
    t.equal(mismatch.status, 'mismatch');
    t.equal(mismatch.found[0], 'y'.repeat(300));
    t.match(mismatch.detail, new RegExp(`holds "${'y'.repeat(100)}…" but not the expected value`), 'long values are shortened in the detail');
  });

  t.test('a domain that does not exist is missing both records', async (t) => {
    dns.clear();
    const result = await check();
    t.equal(result.ok, false);
    t.equal(result.MX.status, 'missing');
    t.equal(result.MX.detail, `${DOMAIN} does not exist in DNS (NXDOMAIN); publish MX records pointing to mx1.pec.example.it, mx2.pec.example.it.`);
    t.equal(result.TXT.status, 'missing');
    t.equal(result.TXT.detail, `${TXT_NAME} has no TXT record; publish one with the value ${TOKEN}.`);
  });

  t.test('names compare case-insensitively and ignore trailing dots', async (t) => {
    dns.clear();
    dns.set('STUDIO-Verdi.IT.', 'MX', [{ exchange: 'MX1.PEC.Example.IT.', priority: 10 }]);
    dns.set('_PEC-VERIFY.studio-verdi.it', 'TXT', [TOKEN]);
    const result = await checkDomainRecords(config, {
      domain: 'Studio-Verdi.It.', mxHosts: ['Mx1.Pec.Example.It.', 'mx2.pec.example.it'], txtName: '_pec-verify.STUDIO-VERDI.it.', txtValue: TOKEN,
    });
    t.equal(result.ok, true);
    const records = byType(result.records);
    t.match(records.MX, { name: DOMAIN, expected: MX_HOSTS, found: ['mx1.pec.example.it'], status: 'ok' });
    t.match(records.TXT, { name: TXT_NAME, status: 'ok' });
  });
});

t.test('checkDomainRecords: resolver failures become error records, never exceptions', async (t) => {
  const { dns, config } = await startServer(t);

  t.test('SERVFAIL', async (t) => {
    dns.clear();
    publishCorrectRecords(dns);
    dns.fail(DOMAIN, 'servfail');
    const result = await checkDomainRecords(config, expected);
    t.equal(result.ok, false);
    const { MX, TXT } = byType(result.records);
    t.same(MX, {
      type: 'MX', name: DOMAIN, expected: MX_HOSTS, found: [], status: 'error',
      detail: `The MX lookup for ${DOMAIN} failed: the DNS server reported a server failure (SERVFAIL). Try again later.`,
    });
    t.equal(TXT.status, 'ok', 'the other lookup is unaffected');
    dns.heal(DOMAIN);
    t.equal((await checkDomainRecords(config, expected)).ok, true, 'healed');
  });

  t.test('REFUSED', async (t) => {
    dns.clear();
    publishCorrectRecords(dns);
    dns.fail(TXT_NAME, 'refused');
    const { MX, TXT } = byType((await checkDomainRecords(config, expected)).records);
    t.equal(MX.status, 'ok');
    t.equal(TXT.status, 'error');
    t.equal(TXT.detail, `The TXT lookup for ${TXT_NAME} failed: the DNS server refused the query (REFUSED). Try again later.`);
  });

  t.test('timeout', async (t) => {
    dns.clear();
    publishCorrectRecords(dns);
    dns.fail(DOMAIN, 'timeout');
    dns.fail(TXT_NAME, 'timeout');
    const started = Date.now();
    const result = await checkDomainRecords(config, expected);
    const elapsed = Date.now() - started;
    t.ok(elapsed < 2000, `gave up after ${elapsed} ms; both lookups run in parallel`);
    const { MX, TXT } = byType(result.records);
    t.equal(MX.status, 'error');
    t.equal(MX.detail, `The MX lookup for ${DOMAIN} failed: no DNS server answered in time (timeout 300 ms, 1 try). Try again later.`);
    t.equal(TXT.status, 'error');
    t.match(TXT.detail, /no DNS server answered in time/);
  });

  t.test('unreachable server', async (t) => {
    const gone = await startDnsServer();
    await gone.close();
    const result = await checkDomainRecords({ ...config, servers: [gone.address] }, expected);
    t.equal(result.ok, false);
    for (const record of result.records) {
      t.equal(record.status, 'error', record.type);
      // ICMP "port unreachable" usually arrives first; a host that drops it would time out instead.
      t.match(record.detail, /failed: (the DNS server could not be reached \(connection refused\)|no DNS server answered in time)/);
    }
  });

  t.test('a configured server that is not an IP address is a configuration error', async (t) => {
    await t.rejects(checkDomainRecords({ ...config, servers: ['dns.example.net'] }, expected), /must be IP addresses/);
  });
});

t.test('test DNS server: wire behaviour and query log', async (t) => {
  const { dns } = await startServer(t);
  // No timeout case here: a generous limit, so that a loaded machine cannot fail it.
  const resolver = new Resolver({ timeout: 3_000, tries: 2 });
  resolver.setServers([dns.address]);
  const errorCode = (promise: Promise<unknown>) => promise.then(() => 'no error', (error: NodeJS.ErrnoException) => error.code);

  t.test('NXDOMAIN for unknown names, NODATA for known names without that type', async (t) => {
    dns.clear();
    dns.set('a.b.example.net', 'A', ['192.0.2.1']);
    t.equal(await errorCode(resolver.resolveMx('unknown.example.net')), 'ENOTFOUND');
    t.equal(await errorCode(resolver.resolveMx('a.b.example.net')), 'ENODATA');
    t.equal(await errorCode(resolver.resolveMx('b.example.net')), 'ENODATA', 'a name with names below it exists');
    t.same(await resolver.resolve4('A.B.Example.NET.'), ['192.0.2.1']);
  });

  t.test('set replaces, clear forgets', async (t) => {
    dns.clear();
    dns.set('example.net', 'MX', [{ exchange: 'one.example.net', priority: 10 }]);
    dns.set('EXAMPLE.net.', 'MX', [{ exchange: 'two.example.net', priority: 20 }]);
    t.same(await resolver.resolveMx('example.net'), [{ exchange: 'two.example.net', priority: 20 }]);
    dns.clear('example.net');
    t.equal(await errorCode(resolver.resolveMx('example.net')), 'ENOTFOUND');
  });

  t.test('CNAMEs inside the server are followed', async (t) => {
    dns.clear();
    dns.set('_pec-verify.example.net', 'CNAME', ['tokens.dns-host.example']);
    dns.set('tokens.dns-host.example', 'TXT', ['pec-verify=abc']);
    t.same(await resolver.resolveTxt('_pec-verify.example.net'), [['pec-verify=abc']]);
    t.same(await resolver.resolveCname('_pec-verify.example.net'), ['tokens.dns-host.example']);
  });

  t.test('long TXT values travel as 255-byte chunks', async (t) => {
    dns.clear();
    dns.set('long.example.net', 'TXT', ['z'.repeat(600)]);
    const [record] = await resolver.resolveTxt('long.example.net');
    t.same(record?.map((chunk) => chunk.length), [255, 255, 90]);
  });

  t.test('the query log records each question once, normalised', async (t) => {
    dns.clear();
    publishCorrectRecords(dns);
    t.same(dns.queries, [], 'clear() empties the log');
    const result = await checkDomainRecords({ servers: [dns.address], timeoutMs: 3_000, tries: 2 }, { ...expected, domain: 'Studio-Verdi.IT.' });
    t.equal(result.ok, true);
    t.same(
      [...dns.queries].sort((a, b) => a.type.localeCompare(b.type)),
      [{ name: DOMAIN, type: 'MX', transport: 'udp' }, { name: TXT_NAME, type: 'TXT', transport: 'udp' }],
    );
  });
});
