/**
 * Validators for Italian identifiers: codice fiscale (personal and numeric), partita IVA and the SDI
 * codice destinatario. Pure functions without dependencies, so both the API and the tests can use them
 * without a database or network.
 *
 * Validators return a result instead of throwing because callers collect every broken rule of a payload
 * before answering, and the `reason` goes straight into the API error detail.
 */

export type ValidationResult<Kind extends string> = { ok: true; kind: Kind } | { ok: false; reason: string };

export type CodiceFiscaleKind = 'personal' | 'numeric';
export type SdiRecipientKind = 'private' | 'public_administration';

export interface PersonalCodeDetails {
  /** Only two digits are encoded; the century cannot be told from the code alone. */
  birthYearTwoDigits: number;
  /** 1–12. */
  birthMonth: number;
  /** 1–31, already corrected for the +40 that marks women. */
  birthDay: number;
  sex: 'M' | 'F';
  /** Belfiore code of the birth municipality (or Z… for a foreign country), with omocodia letters decoded. */
  placeCode: string;
}

/** Users paste codes with spaces and in lower case; the stored and compared form has neither. */
export function normalizeTaxCode(input: string): string {
  return input.trim().replace(/\s+/g, '').toUpperCase();
}

/** As {@link normalizeTaxCode}, and drops the `IT` country prefix of the EU VAT number form. */
export function normalizePartitaIva(input: string): string {
  const normalized = normalizeTaxCode(input);
  return normalized.startsWith('IT') ? normalized.slice(2) : normalized;
}

// When two people would get the same code (omocodia), the Agenzia delle Entrate replaces digits with these
// letters, L standing for 0 through V for 9, so the numeric positions may hold either.
const OMOCODIA_LETTERS = 'LMNPQRSTUV';
const DIGIT_OR_OMOCODIA = `[0-9${OMOCODIA_LETTERS}]`;

// The month position is checked separately (as any letter here) so a wrong month gets its own reason.
const PERSONAL_CODE_SHAPE = new RegExp(
  `^[A-Z]{6}${DIGIT_OR_OMOCODIA}{2}[A-Z]${DIGIT_OR_OMOCODIA}{2}[A-Z]${DIGIT_OR_OMOCODIA}{3}[A-Z]$`,
);

/** Month letters in calendar order: A = January … T = December. */
const MONTH_LETTERS = 'ABCDEHLMPRST';

// The official table for odd positions; letters A–J share the values of the digits 0–9.
const ODD_POSITION_VALUES: Readonly<Record<string, number>> = {
  0: 1, 1: 0, 2: 5, 3: 7, 4: 9, 5: 13, 6: 15, 7: 17, 8: 19, 9: 21,
  A: 1, B: 0, C: 5, D: 7, E: 9, F: 13, G: 15, H: 17, I: 19, J: 21, K: 2, L: 4, M: 18,
  N: 20, O: 11, P: 3, Q: 6, R: 8, S: 12, T: 14, U: 16, V: 10, W: 22, X: 25, Y: 24, Z: 23,
};

/** Even positions use the plain value: digits as themselves, letters A = 0 … Z = 25. */
function evenPositionValue(character: string): number {
  return /[0-9]/.test(character) ? Number(character) : character.charCodeAt(0) - 'A'.charCodeAt(0);
}

/** Maps omocodia letters back to the digits they replaced; plain digits pass through. */
function decodeOmocodia(characters: string): string {
  return [...characters].map((character) => {
    const index = OMOCODIA_LETTERS.indexOf(character);
    return index === -1 ? character : String(index);
  }).join('');
}

/**
 * The check character over the first 15 characters. It is computed on the code as written, so an omocodic
 * code has its own check character rather than the one of the original code.
 */
function personalCheckCharacter(firstFifteen: string): string {
  let sum = 0;
  [...firstFifteen].forEach((character, index) => {
    // Positions are counted from 1 in the official rules, so index 0 is an odd position.
    sum += index % 2 === 0 ? ODD_POSITION_VALUES[character]! : evenPositionValue(character);
  });
  return String.fromCharCode('A'.charCodeAt(0) + (sum % 26));
}

/** The check digit shared by the partita IVA and the 11-digit codice fiscale, over the first 10 digits. */
function numericCheckDigit(firstTen: string): number {
  let sum = 0;
  [...firstTen].forEach((character, index) => {
    const digit = Number(character);
    if (index % 2 === 0) {
      sum += digit;
    } else {
      const doubled = digit * 2;
      sum += doubled > 9 ? doubled - 9 : doubled;
    }
  });
  return (10 - (sum % 10)) % 10;
}

/** `label` names the identifier in the reason, because the same 11-digit rules apply to two different fields. */
function validateNumericCode(code: string, label: string): ValidationResult<'numeric'> {
  if (code.length !== 11) return { ok: false, reason: `a ${label} has 11 digits, this one has ${code.length} characters` };
  if (!/^[0-9]{11}$/.test(code)) return { ok: false, reason: `a ${label} contains only digits` };
  // All zeros passes the checksum, but nobody is ever assigned it; it is what placeholder data looks like.
  if (/^0+$/.test(code)) return { ok: false, reason: `a ${label} cannot be all zeros` };
  if (numericCheckDigit(code.slice(0, 10)) !== Number(code[10])) {
    return { ok: false, reason: `wrong check digit: the ${label} has a typo` };
  }
  return { ok: true, kind: 'numeric' };
}

function validatePersonalCode(code: string): ValidationResult<'personal'> {
  if (!PERSONAL_CODE_SHAPE.test(code)) {
    return {
      ok: false,
      reason: 'bad structure: a 16-character codice fiscale is 6 letters, 2 digits, a month letter, 2 digits, a letter, 3 digits and a check letter',
    };
  }
  const monthLetter = code[8]!;
  if (!MONTH_LETTERS.includes(monthLetter)) {
    return { ok: false, reason: `invalid month: '${monthLetter}' is not a month letter (${[...MONTH_LETTERS].join(' ')})` };
  }
  const encodedDay = Number(decodeOmocodia(code.slice(9, 11)));
  if (!((encodedDay >= 1 && encodedDay <= 31) || (encodedDay >= 41 && encodedDay <= 71))) {
    return { ok: false, reason: `invalid day: ${encodedDay} is neither 1–31 (men) nor 41–71 (women)` };
  }
  // The expected character is deliberately not disclosed: when the typo is elsewhere, users would "fix"
  // the last character and turn a rejected code into an accepted but wrong one.
  if (personalCheckCharacter(code.slice(0, 15)) !== code[15]) {
    return { ok: false, reason: 'wrong check character: the codice fiscale has a typo' };
  }
  return { ok: true, kind: 'personal' };
}

/**
 * Validates an already normalized codice fiscale (see {@link normalizeTaxCode}): 16 characters for people,
 * 11 digits for companies and other entities.
 */
export function validateCodiceFiscale(code: string): ValidationResult<CodiceFiscaleKind> {
  if (code.length === 16) return validatePersonalCode(code);
  if (code.length === 11) return validateNumericCode(code, 'numeric codice fiscale');
  return {
    ok: false,
    reason: `wrong length: a codice fiscale has 16 characters (people) or 11 digits (companies and entities), this one has ${code.length}`,
  };
}

/** Validates a partita IVA, with or without the `IT` prefix, spaces or lower case. */
export function validatePartitaIva(vat: string): ValidationResult<'numeric'> {
  return validateNumericCode(normalizePartitaIva(vat), 'partita IVA');
}

/**
 * Birth data and place encoded in a valid personal codice fiscale, or `null` for anything else (numeric or
 * invalid codes), so identity checks cannot silently compare against garbage. Expects a normalized code.
 */
export function personalCodeDetails(code: string): PersonalCodeDetails | null {
  const validation = validateCodiceFiscale(code);
  if (!validation.ok || validation.kind !== 'personal') return null;
  const encodedDay = Number(decodeOmocodia(code.slice(9, 11)));
  const female = encodedDay > 40;
  return {
    birthYearTwoDigits: Number(decodeOmocodia(code.slice(6, 8))),
    birthMonth: MONTH_LETTERS.indexOf(code[8]!) + 1,
    birthDay: female ? encodedDay - 40 : encodedDay,
    sex: female ? 'F' : 'M',
    placeCode: code[11]! + decodeOmocodia(code.slice(12, 15)),
  };
}

/**
 * Validates an already upper-cased codice destinatario for e-invoicing through the SDI: 7 characters for
 * private recipients, 6 for a public administration office (codice univoco ufficio, from the IPA index).
 * `0000000` is a valid private code: it tells the SDI to deliver to the recipient's PEC address instead.
 */
export function validateSdiCode(code: string): ValidationResult<SdiRecipientKind> {
  if (code.length !== 6 && code.length !== 7) {
    return {
      ok: false,
      reason: `wrong length: a codice destinatario has 7 characters (private recipients) or 6 (public administration offices), this one has ${code.length}`,
    };
  }
  if (!/^[A-Z0-9]+$/.test(code)) return { ok: false, reason: 'bad structure: a codice destinatario contains only upper-case letters and digits' };
  if (code.length === 7) return { ok: true, kind: 'private' };
  // Six zeros is no office's code; it is almost always the "deliver to PEC" code with a zero missing.
  if (code === '000000') return { ok: false, reason: "'000000' is not a public administration office; deliver-to-PEC is '0000000' (seven zeros)" };
  return { ok: true, kind: 'public_administration' };
}
