import t, { type Test } from 'tap';
import { parse } from 'tldts';
import { analyzeDomainName, isValidLocalPart, type AnalyzedDomainName, type DomainNameProblem } from '../api/src/modules/domains/names.ts';

const PROVIDER_DOMAINS = ['pec.example.it', 'Provider-Posta.IT.', 'pec.perché.it'] as const;

function analyze(input: string) {
  return analyzeDomainName(input, PROVIDER_DOMAINS);
}

/** How a detail quotes the (trimmed) input: in full, or its first 100 characters for absurdly long input. */
function quoted(trimmed: string): string {
  return trimmed.length > 100 ? `${JSON.stringify(trimmed.slice(0, 100)).slice(0, -1)}…"` : JSON.stringify(trimmed);
}

/** Every refusal must name the input and be a full sentence. */
function assertRefused(t: Test, input: string, problem: DomainNameProblem, detailPattern?: RegExp) {
  const result = analyze(input);
  if (result.ok) {
    t.fail(`${JSON.stringify(input)} should be refused with ${problem}`, { found: result.name });
    return;
  }
  t.equal(result.problem, problem, `${JSON.stringify(input)} → ${problem}`);
  const trimmed = input.trim();
  t.ok(trimmed === '' || result.detail.includes(quoted(trimmed)), `detail names the input: ${result.detail}`);
  t.match(result.detail, /^[A-Z"].*\.$/, 'detail is a sentence');
  if (detailPattern) t.match(result.detail, detailPattern, `detail of ${JSON.stringify(input)}`);
}

t.test('accepted names are normalized to ASCII with a display form, level and PSL split', async (t) => {
  const cases: Array<[input: string, expected: AnalyzedDomainName]> = [
    ['studio-rossi.it', { ascii: 'studio-rossi.it', unicode: 'studio-rossi.it', level: 2, registrableDomain: 'studio-rossi.it', publicSuffix: 'it' }],
    ['pec.studio-rossi.it', { ascii: 'pec.studio-rossi.it', unicode: 'pec.studio-rossi.it', level: 3, registrableDomain: 'studio-rossi.it', publicSuffix: 'it' }],
    // Case, surrounding whitespace and one trailing (root) dot are not part of the name.
    ['  PEC.Studio-Rossi.IT.  ', { ascii: 'pec.studio-rossi.it', unicode: 'pec.studio-rossi.it', level: 3, registrableDomain: 'studio-rossi.it', publicSuffix: 'it' }],
    ['Studio-Rossi.it.', { ascii: 'studio-rossi.it', unicode: 'studio-rossi.it', level: 2, registrableDomain: 'studio-rossi.it', publicSuffix: 'it' }],
    ['\tstudio-rossi.it\n', { ascii: 'studio-rossi.it', unicode: 'studio-rossi.it', level: 2, registrableDomain: 'studio-rossi.it', publicSuffix: 'it' }],
    // Digits and inner hyphens are fine anywhere but in the TLD.
    ['123.it', { ascii: '123.it', unicode: '123.it', level: 2, registrableDomain: '123.it', publicSuffix: 'it' }],
    ['a.it', { ascii: 'a.it', unicode: 'a.it', level: 2, registrableDomain: 'a.it', publicSuffix: 'it' }],
    ['studio--rossi.it', { ascii: 'studio--rossi.it', unicode: 'studio--rossi.it', level: 2, registrableDomain: 'studio--rossi.it', publicSuffix: 'it' }],
    ['0x7f.it', { ascii: '0x7f.it', unicode: '0x7f.it', level: 2, registrableDomain: '0x7f.it', publicSuffix: 'it' }],
    // Multi-label public suffixes: the level counts from the suffix, not from the root.
    ['esempio.co.uk', { ascii: 'esempio.co.uk', unicode: 'esempio.co.uk', level: 2, registrableDomain: 'esempio.co.uk', publicSuffix: 'co.uk' }],
    ['pec.esempio.co.uk', { ascii: 'pec.esempio.co.uk', unicode: 'pec.esempio.co.uk', level: 3, registrableDomain: 'esempio.co.uk', publicSuffix: 'co.uk' }],
    ['ESEMPIO.CO.UK.', { ascii: 'esempio.co.uk', unicode: 'esempio.co.uk', level: 2, registrableDomain: 'esempio.co.uk', publicSuffix: 'co.uk' }],
    ['pec.esempio.com.au', { ascii: 'pec.esempio.com.au', unicode: 'pec.esempio.com.au', level: 3, registrableDomain: 'esempio.com.au', publicSuffix: 'com.au' }],
    ['example.co.jp', { ascii: 'example.co.jp', unicode: 'example.co.jp', level: 2, registrableDomain: 'example.co.jp', publicSuffix: 'co.jp' }],
    // .it geographic names are public suffixes in the PSL, so a municipality's domain under them is level 2.
    ['comune.milano.it', { ascii: 'comune.milano.it', unicode: 'comune.milano.it', level: 2, registrableDomain: 'comune.milano.it', publicSuffix: 'milano.it' }],
    ['pec.comune.milano.it', { ascii: 'pec.comune.milano.it', unicode: 'pec.comune.milano.it', level: 3, registrableDomain: 'comune.milano.it', publicSuffix: 'milano.it' }],
    ['comune.mi.it', { ascii: 'comune.mi.it', unicode: 'comune.mi.it', level: 2, registrableDomain: 'comune.mi.it', publicSuffix: 'mi.it' }],
    ['pec.comune.mi.it', { ascii: 'pec.comune.mi.it', unicode: 'pec.comune.mi.it', level: 3, registrableDomain: 'comune.mi.it', publicSuffix: 'mi.it' }],
    ['regione.lombardia.it', { ascii: 'regione.lombardia.it', unicode: 'regione.lombardia.it', level: 2, registrableDomain: 'regione.lombardia.it', publicSuffix: 'lombardia.it' }],
    ['comune.bz.it', { ascii: 'comune.bz.it', unicode: 'comune.bz.it', level: 2, registrableDomain: 'comune.bz.it', publicSuffix: 'bz.it' }],
    ['scuola.edu.it', { ascii: 'scuola.edu.it', unicode: 'scuola.edu.it', level: 2, registrableDomain: 'scuola.edu.it', publicSuffix: 'edu.it' }],
    // com.it is not in the PSL: it is an ordinary registrable name under .it.
    ['com.it', { ascii: 'com.it', unicode: 'com.it', level: 2, registrableDomain: 'com.it', publicSuffix: 'it' }],
    ['pec.com.it', { ascii: 'pec.com.it', unicode: 'pec.com.it', level: 3, registrableDomain: 'com.it', publicSuffix: 'it' }],
    // PSL private section (blogspot.com, github.io) is ignored: the ICANN suffix decides.
    ['blogspot.com', { ascii: 'blogspot.com', unicode: 'blogspot.com', level: 2, registrableDomain: 'blogspot.com', publicSuffix: 'com' }],
    ['studio.blogspot.com', { ascii: 'studio.blogspot.com', unicode: 'studio.blogspot.com', level: 3, registrableDomain: 'blogspot.com', publicSuffix: 'com' }],
    ['studio.github.io', { ascii: 'studio.github.io', unicode: 'studio.github.io', level: 3, registrableDomain: 'github.io', publicSuffix: 'io' }],
    // Wildcard rule *.ck with the exception !www.ck.
    ['www.ck', { ascii: 'www.ck', unicode: 'www.ck', level: 2, registrableDomain: 'www.ck', publicSuffix: 'ck' }],
    ['studio.foo.ck', { ascii: 'studio.foo.ck', unicode: 'studio.foo.ck', level: 2, registrableDomain: 'studio.foo.ck', publicSuffix: 'foo.ck' }],
    // IDN: stored as punycode, displayed in Unicode, whichever form was sent.
    ['perché.it', { ascii: 'xn--perch-fsa.it', unicode: 'perché.it', level: 2, registrableDomain: 'xn--perch-fsa.it', publicSuffix: 'it' }],
    ['PERCHÉ.IT.', { ascii: 'xn--perch-fsa.it', unicode: 'perché.it', level: 2, registrableDomain: 'xn--perch-fsa.it', publicSuffix: 'it' }],
    ['xn--perch-fsa.it', { ascii: 'xn--perch-fsa.it', unicode: 'perché.it', level: 2, registrableDomain: 'xn--perch-fsa.it', publicSuffix: 'it' }],
    ['XN--PERCH-FSA.IT', { ascii: 'xn--perch-fsa.it', unicode: 'perché.it', level: 2, registrableDomain: 'xn--perch-fsa.it', publicSuffix: 'it' }],
    ['café.example.it', { ascii: 'xn--caf-dma.example.it', unicode: 'café.example.it', level: 3, registrableDomain: 'example.it', publicSuffix: 'it' }],
    ['pec.città.it', { ascii: 'pec.xn--citt-3na.it', unicode: 'pec.città.it', level: 3, registrableDomain: 'xn--citt-3na.it', publicSuffix: 'it' }],
    ['straße.de', { ascii: 'xn--strae-oqa.de', unicode: 'straße.de', level: 2, registrableDomain: 'xn--strae-oqa.de', publicSuffix: 'de' }],
    ['пример.рф', { ascii: 'xn--e1afmkfd.xn--p1ai', unicode: 'пример.рф', level: 2, registrableDomain: 'xn--e1afmkfd.xn--p1ai', publicSuffix: 'xn--p1ai' }],
    ['pec.пример.рф', { ascii: 'pec.xn--e1afmkfd.xn--p1ai', unicode: 'pec.пример.рф', level: 3, registrableDomain: 'xn--e1afmkfd.xn--p1ai', publicSuffix: 'xn--p1ai' }],
    // Compatibility forms map as IDNA maps them: full-width letters and the ideographic full stop.
    ['ＥＸＡＭＰＬＥ.it', { ascii: 'example.it', unicode: 'example.it', level: 2, registrableDomain: 'example.it', publicSuffix: 'it' }],
    ['example。it', { ascii: 'example.it', unicode: 'example.it', level: 2, registrableDomain: 'example.it', publicSuffix: 'it' }],
    // The parent of a provider domain is not itself a provider domain.
    ['example.it', { ascii: 'example.it', unicode: 'example.it', level: 2, registrableDomain: 'example.it', publicSuffix: 'it' }],
    // Look-alike of a provider domain that is not a subdomain of it.
    ['notpec.example.it', { ascii: 'notpec.example.it', unicode: 'notpec.example.it', level: 3, registrableDomain: 'example.it', publicSuffix: 'it' }],
  ];
  for (const [input, expected] of cases) {
    t.same(analyze(input), { ok: true, name: expected }, JSON.stringify(input));
  }

  const label63 = 'a'.repeat(63);
  const longest = `${label63}.${label63}.${label63}.${'b'.repeat(58)}.it`;
  t.equal(longest.length, 253);
  t.match(analyze(longest), { ok: false, problem: 'too_deep' }, 'a 253-character name passes the length checks (and fails only on depth)');
  t.match(analyze(`${label63}.it`), { ok: true, name: { ascii: `${label63}.it`, level: 2 } }, 'a 63-character label is allowed');
  t.match(analyze(`${label63}.${label63}.it`), { ok: true, name: { level: 3 } });

  t.same(analyzeDomainName('pec.example.it', []), {
    ok: true,
    name: { ascii: 'pec.example.it', unicode: 'pec.example.it', level: 3, registrableDomain: 'example.it', publicSuffix: 'it' },
  }, 'without provider domains nothing is reserved');
});

t.test('malformed names are invalid_domain_name', async (t) => {
  const label63 = 'a'.repeat(63);
  const cases: Array<[input: string, detail?: RegExp]> = [
    ['', /empty/],
    ['   ', /empty/],
    ['.', /empty label/],
    ['..', /empty label/],
    ['.example.it', /empty label/],
    ['studio..rossi.it', /empty label/],
    ['example.it..', /empty label/],
    ['studio rossi.it', /character " "/],
    ['studio_rossi.it', /character "_"/],
    ['_dmarc.example.it', /character "_"/],
    ['studio*.it', /character "\*"/],
    ['*.example.it', /character "\*"/],
    ['studio@rossi.it', /character "@"/],
    ['info@studio-rossi.it', /character "@"/],
    ['http://studio-rossi.it', /character ":"/],
    ['studio-rossi.it/path', /character "\/"/],
    ['studio-rossi.it:25', /character ":"/],
    // Would be percent-decoded or truncated by URL-style IDNA processing if not refused first.
    ['a%41.it', /character "%"/],
    ['a／b.it', /character "\/"/],
    ['studio,rossi.it', /character ","/],
    ['studio!.it', /character "!"/],
    ['"studio".it', /character "\\""/],
    ['stu\u0000dio.it', /character "\\u0000"/],
    ['-studio.it', /hyphen/],
    ['studio-.it', /hyphen/],
    ['pec.-studio.it', /hyphen/],
    ['studio.-it', /hyphen/],
    ['-.it', /hyphen/],
    [`${'a'.repeat(64)}.it`, /64 characters.*at most 63/],
    [`pec.${'a'.repeat(64)}.it`, /64 characters.*at most 63/],
    // 60 Unicode characters but 67 octets once punycoded.
    [`${'é'.repeat(60)}.it`, /at most 63/],
    [`${label63}.${label63}.${label63}.${'b'.repeat(59)}.it`, /254 characters.*at most 253/],
    ['xn--zz.it', /label "xn--zz"/],
    ['xn--.it', /label "xn--"/],
    ['xn--a.it', /label "xn--a"/],
    ['studio-rossi.123', /all-numeric label "123"/],
    ['1.2.3.4.5', /all-numeric label "5"/],
    ['999.1.1.1', /all-numeric label "1"/],
    ['example.１２３', /all-numeric label "123"/],
    ['studio-rossi.zzz', /unknown top-level domain "zzz"/],
    ['studio-rossi.itt', /unknown top-level domain "itt"/],
    ['studio-rossi.local', /unknown top-level domain "local"/],
    ['studio-rossi.localhost', /unknown top-level domain "localhost"/],
    ['studio-rossi.test', /unknown top-level domain "test"/],
    ['studio-rossi.example', /unknown top-level domain "example"/],
    ['localhost', /unknown top-level domain "localhost"/],
    ['studio-rossi', /unknown top-level domain "studio-rossi"/],
    ['pec.studio-rossi.0x1', /unknown top-level domain "0x1"/],
  ];
  for (const [input, detail] of cases) {
    assertRefused(t, input, 'invalid_domain_name', detail);
  }

  const huge = `${'a'.repeat(10_000)}.it`;
  const result = analyze(huge);
  t.match(result, { ok: false, problem: 'invalid_domain_name', detail: /at most 253|maximum length/ }, 'very long input');
  if (!result.ok) t.ok(result.detail.length < 300, 'a huge input is not echoed in full');
});

t.test('public suffixes and names deeper than level 3 are refused', async (t) => {
  // The .it region and province names used below are public suffixes according to tldts (ICANN section).
  const itRegionSuffixes = ['mi.it', 'milano.it', 'rm.it', 'roma.it', 'to.it', 'torino.it', 'lombardia.it', 'sicilia.it', 'bz.it', 'gov.it', 'edu.it'];
  for (const suffix of itRegionSuffixes) {
    t.equal(parse(suffix, { allowPrivateDomains: false }).publicSuffix, suffix, `tldts: ${suffix} is a public suffix`);
  }
  t.equal(parse('com.it', { allowPrivateDomains: false }).publicSuffix, 'it', 'tldts: com.it is not a public suffix');

  const publicSuffixes = [
    'it', 'IT', 'it.', ' it ', 'com', 'uk', 'co.uk', 'CO.UK.', 'ac.uk', 'gov.uk', 'com.au', 'co.jp', 'eu',
    'xn--p1ai', 'рф', 'foo.ck', 'kawasaki.jp', 'example.kawasaki.jp', ...itRegionSuffixes,
  ];
  for (const input of publicSuffixes) assertRefused(t, input, 'public_suffix', /public suffix/);

  const tooDeep: Array<[input: string, level: number, registrable: string]> = [
    ['a.pec.studio-rossi.it', 4, 'studio-rossi.it'],
    ['A.PEC.STUDIO-ROSSI.IT.', 4, 'studio-rossi.it'],
    ['b.a.pec.studio-rossi.it', 5, 'studio-rossi.it'],
    ['x.pec.esempio.co.uk', 4, 'esempio.co.uk'],
    ['x.pec.comune.milano.it', 4, 'comune.milano.it'],
    ['x.pec.comune.mi.it', 4, 'comune.mi.it'],
    ['a.b.blogspot.com', 4, 'blogspot.com'],
    ['posta.café.example.it', 4, 'example.it'],
    ['provider-posta.it.evil.it', 4, 'evil.it'],
    ['a.b.c.d.e.f.g.h.it', 9, 'h.it'],
  ];
  for (const [input, level, registrable] of tooDeep) {
    assertRefused(t, input, 'too_deep', new RegExp(`level-${level}\\b.*at most level 3.*${registrable.replace(/\./g, '\\.')}`));
  }
});

t.test('IP addresses are ip_address', async (t) => {
  const addresses = [
    '1.2.3.4', '127.0.0.1', '192.168.1.10', '10.0.0.1.', ' 8.8.8.8 ', '255.255.255.255', '0.0.0.0',
    // Shorthand IPv4 that URL parsers and resolvers expand.
    '127.1', '0x7f.0.0.1', '0x7f000001', '2130706433',
    '::1', '[::1]', '::', '2001:db8::1', '2001:DB8::1', '[2001:db8::1]', 'fe80::1', '::ffff:192.0.2.1', '2001:0db8:0000:0000:0000:0000:0000:0001',
  ];
  for (const input of addresses) assertRefused(t, input, 'ip_address', /IP address/);

  // Look like addresses but are not: refused for the name's own reasons, or accepted.
  assertRefused(t, '256.1.1.1', 'invalid_domain_name', /all-numeric/);
  assertRefused(t, '1.2.3.4.5', 'invalid_domain_name', /all-numeric/);
  assertRefused(t, '2001:db8::g', 'invalid_domain_name', /character ":"/);
  t.match(analyze('1.2.3.it'), { ok: false, problem: 'too_deep' });
  t.match(analyze('192.168.it'), { ok: true, name: { ascii: '192.168.it', level: 3 } });
});

t.test('provider domains and their subdomains are provider_domain', async (t) => {
  const reserved: Array<[input: string, provider: string | null]> = [
    ['pec.example.it', null],
    ['PEC.EXAMPLE.IT.', null],
    ['  pec.example.it  ', null],
    ['a.pec.example.it', 'pec.example.it'],
    ['Mario.Rossi.pec.example.it', 'pec.example.it'],
    // Configured as 'Provider-Posta.IT.': the configuration is normalized like the input.
    ['provider-posta.it', null],
    ['pec.provider-posta.it', 'provider-posta.it'],
    ['a.b.provider-posta.it', 'provider-posta.it'],
    // Configured in Unicode, compared in ASCII, whichever form the partner sends.
    ['pec.perché.it', null],
    ['pec.xn--perch-fsa.it', null],
    ['x.pec.perché.it', 'pec.xn--perch-fsa.it'],
    ['x.pec.XN--PERCH-FSA.it', 'pec.xn--perch-fsa.it'],
  ];
  for (const [input, provider] of reserved) {
    assertRefused(t, input, 'provider_domain', provider === null ? /is a domain of the PEC provider/ : new RegExp(`is under ${provider.replace(/\./g, '\\.')}`));
  }

  // Siblings, parents and look-alikes are not provider domains.
  for (const input of ['example.it', 'pec2.example.it', 'xpec.example.it', 'perché.it', 'posta.perché.it', 'posta.it', 'provider-posta.com', 'pec.example.com']) {
    t.match(analyze(input), { ok: true }, `${input} is certifiable`);
  }

  t.match(analyzeDomainName('pec.example.it', ['', ' ']), { ok: true }, 'blank provider entries reserve nothing');
  t.match(analyzeDomainName('it', ['pec.example.it']), { ok: false, problem: 'public_suffix' });
});

t.test('isValidLocalPart follows the PEC mailbox rules', async (t) => {
  const valid = [
    'a', '1', 'mario', 'mario.rossi', 'mario-rossi', 'mario_rossi', 'm.r', 'info2024', '2024info', 'a.b.c', 'a-b_c.d',
    'a__b', 'a--b', 'a._b', 'a.-b', 'x'.repeat(64), `a${'.b'.repeat(31)}a`,
  ];
  const invalid = [
    '', 'x'.repeat(65), 'Mario', 'MARIO.ROSSI', '.mario', 'mario.', '-mario', 'mario-', '_mario', 'mario_', 'mario..rossi',
    'a..', '.', '-', '_', 'mario rossi', 'mario+tag', 'mario@rossi', 'màrio', 'mario/rossi', "o'brien", 'mario!',
    ' mario', 'mario\n',
  ];
  for (const local of valid) t.equal(isValidLocalPart(local), true, `${JSON.stringify(local)} is valid`);
  for (const local of invalid) t.equal(isValidLocalPart(local), false, `${JSON.stringify(local)} is invalid`);
});
