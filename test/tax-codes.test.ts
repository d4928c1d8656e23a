import t from 'tap';
import {
  normalizePartitaIva,
  normalizeTaxCode,
  personalCodeDetails,
  validateCodiceFiscale,
  validatePartitaIva,
  validateSdiCode,
} from '../api/src/modules/customers/tax-codes.ts';

/*
 * Every fixture was checked independently of the module under test: the two base codes by hand below, and all
 * of them with a separate throw-away reference implementation (Python) of the official algorithms.
 *
 * RSSMRA85T10A562S (Mario Rossi, man, 10 December 1985, place A562)
 *   odd positions 1,3,…,15:  R S R 8 T 0 5 2  -> 8+12+8+19+14+1+13+5 = 80
 *   even positions 2,4,…,14: S M A 5 1 A 6    -> 18+12+0+5+1+0+6      = 42
 *   122 mod 26 = 18 -> S
 * BNCLRA90E41F205Q (Laura Bianchi, woman, 1 May 1990, place F205)
 *   odd:  B C R 9 E 1 2 5 -> 0+5+8+21+9+0+5+13 = 61
 *   even: N L A 0 4 F 0   -> 13+11+0+0+4+5+0   = 33
 *   94 mod 26 = 16 -> Q
 * Partita IVA 01234567897
 *   odd positions 1,3,5,7,9:  0+2+4+6+8 = 20
 *   even positions 2,…,10:    1→2, 3→6, 5→10→1, 7→14→5, 9→18→9 = 23
 *   (10 − 43 mod 10) mod 10 = 7 -> 11th digit 7
 * Partita IVA 12345678903: odd 1+3+5+7+9 = 25; even 2→4, 4→8, 6→12→3, 8→16→7, 0→0 = 22; (10 − 7) mod 10 = 3
 * Numeric codice fiscale 80123456784: odd 8+1+3+5+7 = 24; even 0, 2→4, 4→8, 6→3, 8→7 = 22; (10 − 6) mod 10 = 4
 */
const CF_MARIO = 'RSSMRA85T10A562S';
const CF_LAURA = 'BNCLRA90E41F205Q';
const PIVA_A = '01234567897';
const PIVA_B = '12345678903';
const CF_ENTITY = '80123456784';

// Omocodia replaces digits from the right (L=0 … V=9); each variant carries its own recomputed check character.
const MARIO_OMOCODIC = ['RSSMRA85T10A56NH', 'RSSMRA85T10ARSNO', 'RSSMRAURTMLARSNL'];
const LAURA_OMOCODIC = ['BNCLRA90E41F20RL', 'BNCLRA90E4MFNLRD', 'BNCLRAVLEQMFNLRP'];

t.test('normalizeTaxCode trims, removes spaces and upper-cases', async (t) => {
  t.equal(normalizeTaxCode('  rssmra 85t10 a562s \n'), CF_MARIO);
  t.equal(normalizeTaxCode(CF_MARIO), CF_MARIO, 'idempotent');
  t.equal(normalizeTaxCode(' 801 234 567 84 '), CF_ENTITY);
});

t.test('normalizePartitaIva also drops the IT prefix', async (t) => {
  t.equal(normalizePartitaIva(`IT${PIVA_A}`), PIVA_A);
  t.equal(normalizePartitaIva(' it 0123 4567 897 '), PIVA_A);
  t.equal(normalizePartitaIva(PIVA_A), PIVA_A);
});

t.test('valid personal codici fiscali', async (t) => {
  t.same(validateCodiceFiscale(CF_MARIO), { ok: true, kind: 'personal' });
  t.same(validateCodiceFiscale(CF_LAURA), { ok: true, kind: 'personal' });
  // Day boundaries: 01 and 31 for men, 41 and 71 for women.
  for (const code of ['RSSMRA85T01A562Q', 'RSSMRA85T31A562T', 'RSSMRA85T41A562U', 'RSSMRA85T71A562X']) {
    t.same(validateCodiceFiscale(code), { ok: true, kind: 'personal' }, code);
  }
});

t.test('omocodic variants are valid', async (t) => {
  for (const code of [...MARIO_OMOCODIC, ...LAURA_OMOCODIC]) {
    t.same(validateCodiceFiscale(code), { ok: true, kind: 'personal' }, code);
  }
  // The check character belongs to the code as written: the original one does not fit a variant.
  t.match(validateCodiceFiscale('RSSMRA85T10A56NS'), { ok: false, reason: /check character/ });
});

t.test('valid numeric codici fiscali', async (t) => {
  t.same(validateCodiceFiscale(CF_ENTITY), { ok: true, kind: 'numeric' });
  t.same(validateCodiceFiscale(PIVA_A), { ok: true, kind: 'numeric' }, "a company's partita IVA is also its codice fiscale");
});

t.test('invalid codici fiscali, one per reason', async (t) => {
  const rejects = (code: string, reason: RegExp, why: string) =>
    t.match(validateCodiceFiscale(code), { ok: false, reason }, `${code}: ${why}`);

  rejects('RSSMRA85T10A562', /^wrong length/, '15 characters');
  rejects('RSSMRA85T10A562SX', /^wrong length/, '17 characters');
  rejects('', /^wrong length/, 'empty');
  rejects('rssmra85t10a562s', /^bad structure/, 'not normalized: lower case');
  rejects('RSSMR485T10A562S', /^bad structure/, 'digit among the name letters');
  rejects('RSSMRA8WT10A562S', /^bad structure/, 'W is not an omocodia letter');
  rejects('RSSMRA85T10A56?S', /^bad structure/, 'punctuation');
  rejects('RSSMRA85T105562S', /^bad structure/, 'place code must start with a letter');
  // These have a correct check character, so only the named rule is broken.
  rejects('RSSMRA85Z10A562B', /^invalid month/, 'Z is not a month letter');
  rejects('RSSMRA85T00A562R', /^invalid day/, 'day 00');
  rejects('RSSMRA85T32A562Y', /^invalid day/, 'day 32');
  rejects('RSSMRA85T40A562V', /^invalid day/, 'day 40');
  rejects('RSSMRA85T72A562C', /^invalid day/, 'day 72');
  rejects('RSSMRA85TPNA562Z', /^invalid day/, 'omocodic day PN decodes to 32');
  rejects('RSSMRA85T10A562T', /^wrong check character/, 'last letter changed');
  rejects('RSSMRA85T10A526S', /^wrong check character/, 'two digits swapped');

  rejects('8012345678', /^wrong length/, '10 digits');
  rejects('8012345678A', /only digits/, 'letter in a numeric code');
  rejects('00000000000', /all zeros/, 'all zeros passes the checksum but is never assigned');
  rejects('80123456785', /^wrong check digit/, 'last digit changed');
});

t.test('the check character is not disclosed in the reason', async (t) => {
  const result = validateCodiceFiscale('RSSMRA85T10A562T');
  t.equal(result.ok, false);
  if (!result.ok) t.notMatch(result.reason, /\bS\b/);
});

t.test('valid partite IVA', async (t) => {
  for (const vat of [PIVA_A, PIVA_B, CF_ENTITY, `IT${PIVA_A}`, ' it 0123 4567 897 ']) {
    t.same(validatePartitaIva(vat), { ok: true, kind: 'numeric' }, JSON.stringify(vat));
  }
});

t.test('invalid partite IVA, one per reason', async (t) => {
  const rejects = (vat: string, reason: RegExp, why: string) =>
    t.match(validatePartitaIva(vat), { ok: false, reason }, `${vat}: ${why}`);

  rejects('0123456789', /has 11 digits/, 'too short');
  rejects('IT012345678970', /has 11 digits/, 'too long after the prefix');
  rejects('0123456789A', /only digits/, 'letter');
  rejects('01234-67897', /only digits/, 'punctuation');
  rejects('00000000000', /all zeros/, 'all zeros');
  rejects('IT00000000000', /all zeros/, 'all zeros with prefix');
  rejects('01234567890', /^wrong check digit/, 'last digit changed');
  rejects('10234567897', /^wrong check digit/, 'first two digits swapped');
});

t.test('personalCodeDetails decodes birth data, sex and place', async (t) => {
  t.same(personalCodeDetails(CF_MARIO), { birthYearTwoDigits: 85, birthMonth: 12, birthDay: 10, sex: 'M', placeCode: 'A562' });
  t.same(personalCodeDetails(CF_LAURA), { birthYearTwoDigits: 90, birthMonth: 5, birthDay: 1, sex: 'F', placeCode: 'F205' });
  t.same(personalCodeDetails('RSSMRA85T71A562X'), { birthYearTwoDigits: 85, birthMonth: 12, birthDay: 31, sex: 'F', placeCode: 'A562' });
  for (const code of MARIO_OMOCODIC) t.same(personalCodeDetails(code), personalCodeDetails(CF_MARIO), `${code} decodes like the original`);
  for (const code of LAURA_OMOCODIC) t.same(personalCodeDetails(code), personalCodeDetails(CF_LAURA), `${code} decodes like the original`);
});

t.test('personalCodeDetails returns null for anything but a valid personal code', async (t) => {
  t.equal(personalCodeDetails('RSSMRA85T10A562T'), null, 'wrong check character');
  t.equal(personalCodeDetails('RSSMRA85T32A562Y'), null, 'invalid day');
  t.equal(personalCodeDetails(CF_ENTITY), null, 'numeric code');
  t.equal(personalCodeDetails(''), null, 'empty');
});

t.test('valid SDI codici destinatario', async (t) => {
  t.same(validateSdiCode('M5UXCR1'), { ok: true, kind: 'private' });
  t.same(validateSdiCode('0000000'), { ok: true, kind: 'private' }, 'deliver to PEC');
  t.same(validateSdiCode('XXXXXXX'), { ok: true, kind: 'private' }, 'foreign recipients');
  t.same(validateSdiCode('UF1234'), { ok: true, kind: 'public_administration' });
  t.same(validateSdiCode('ABCDEF'), { ok: true, kind: 'public_administration' });
});

t.test('invalid SDI codici destinatario', async (t) => {
  const rejects = (code: string, reason: RegExp, why: string) =>
    t.match(validateSdiCode(code), { ok: false, reason }, `${JSON.stringify(code)}: ${why}`);

  rejects('M5UXC', /^wrong length/, '5 characters');
  rejects('M5UXCR12', /^wrong length/, '8 characters');
  rejects('', /^wrong length/, 'empty');
  rejects('m5uxcr1', /^bad structure/, 'lower case');
  rejects('M5UX-R1', /^bad structure/, 'punctuation');
  rejects('UF 123', /^bad structure/, 'space');
  rejects('000000', /seven zeros/, 'deliver-to-PEC code with a zero missing');
});
