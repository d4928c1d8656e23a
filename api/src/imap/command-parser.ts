import { createRequire } from 'node:module';
import type { ImapResponse, ParserOptions } from 'imapflow/lib/handler/types.js';

/**
 * imapflow's protocol parser (see the README for why this one). Loaded through Node's own resolver: the package
 * exposes it with a `./lib/*.js` subpath pattern, which some TypeScript loaders used by the test runner resolve wrongly.
 */
const handler = createRequire(import.meta.url)('imapflow/lib/handler/imap-handler.js') as {
  parser(command: Buffer | string, options?: ParserOptions): Promise<ImapResponse>;
};

export const parseCommand = handler.parser;
