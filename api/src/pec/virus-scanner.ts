import { simpleParser } from 'mailparser';

/** What the access and receiving points ask before accepting content. */
export interface VirusScanner {
  /** The name of the first threat found in the message, or null when it is clean. */
  scan(message: Buffer): Promise<string | null>;
}

/**
 * The EICAR anti-virus test file: every real scanner reports it, so it lets tests (and operators) exercise the
 * virus paths without malware. A production deployment plugs a real engine (e.g. clamd) behind VirusScanner.
 */
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
export const EICAR_TEST_FILE = EICAR;

export const eicarScanner: VirusScanner = {
  async scan(message) {
    // Attachments are usually base64 or quoted-printable: look into decoded parts, and into the raw bytes for
    // content that was not encoded.
    if (message.includes(EICAR)) return 'EICAR-Test-File';
    const parsed = await simpleParser(message, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
    const decoded = [parsed.text ?? '', typeof parsed.html === 'string' ? parsed.html : '', ...parsed.attachments.map((a) => a.content.toString('latin1'))];
    for (const attachment of parsed.attachments) {
      // An attached message (message/rfc822) carries its own encoded parts.
      if (attachment.contentType === 'message/rfc822' && (await eicarScanner.scan(attachment.content))) return 'EICAR-Test-File';
    }
    return decoded.some((part) => part.includes(EICAR)) ? 'EICAR-Test-File' : null;
  },
};
