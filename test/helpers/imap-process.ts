/**
 * A second server process on the test's database: it starts the product's IMAP servers (nothing else) and prints
 * their ports as one JSON line, then serves until it is killed. Used to show that two processes serve one mailbox
 * consistently: UIDs, flags and IDLE wake-ups all go through PostgreSQL.
 */
import { connect } from '@pec-partner/db';
import { signInToMailbox } from '../../api/src/access/sign-in.ts';
import { startImapServers } from '../../api/src/imap/server.ts';
import { MailboxChanges } from '../../api/src/mailstore/changes.ts';
import { loadOrCreateTls } from '../../api/src/pec/tls.ts';

const url = process.argv[2];
if (!url) throw new Error('usage: imap-process.ts <database url>');
const database = connect(url, { max: 5 });
const changes = new MailboxChanges((channel, onNotify) => database.sql.listen(channel, onNotify));
const imap = await startImapServers(database.db, {
  host: '127.0.0.1', port: 0, tlsPort: 0, serverName: 'imap-second.test',
  tls: await loadOrCreateTls({ certificateFile: undefined, privateKeyFile: undefined }, ['localhost']),
  changes, signIn: (attempt) => signInToMailbox(database.db, attempt),
});
process.stdout.write(`${JSON.stringify({ port: imap.port, tlsPort: imap.tlsPort, pid: process.pid })}\n`);
const stop = async () => {
  await imap.close();
  await changes.stop();
  await database.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
