import { and, eq, inArray } from 'drizzle-orm';
import { mailboxAddons, mailboxes, supervisedMailboxes, supervisors, type DbOrTx } from '@pec-partner/db';
import type { TokenService } from '../modules/partners/tokens.ts';
import { SIGN_IN_STATUSES } from './credentials.ts';
import type { HolderPrincipal } from './principals.ts';

/** The session a sign-in link is exchanged for: a JWT of its own type, valid 30 minutes, sent as `mbs_…`. */
export const SESSION_TYP = 'mailbox-session+jwt';
export const SESSION_TTL_SECONDS = 1800;
export const MAILBOX_SESSION_PREFIX = 'mbs_';

/**
 * The supervised mailbox as a supervisor may reach it now: supervision active, mailbox usable (active or suspended),
 * and the supervisor add-on still active on the mailbox that pays for the console.
 */
export async function liveSupervision(db: DbOrTx, supervisorId: string, mailboxId: string) {
  const [row] = await db
    .select({ mailboxId: mailboxes.id, partnerId: mailboxes.partnerId, address: mailboxes.address, status: mailboxes.status, livemode: mailboxes.livemode, payer: supervisors.mailboxId })
    .from(supervisedMailboxes)
    .innerJoin(supervisors, eq(supervisors.id, supervisedMailboxes.supervisorId))
    .innerJoin(mailboxes, eq(mailboxes.id, supervisedMailboxes.mailboxId))
    .where(and(eq(supervisedMailboxes.supervisorId, supervisorId), eq(supervisedMailboxes.mailboxId, mailboxId), eq(supervisedMailboxes.status, 'active'), inArray(mailboxes.status, SIGN_IN_STATUSES)));
  if (!row) return null;
  const [addon] = await db.select({ id: mailboxAddons.id }).from(mailboxAddons)
    .where(and(eq(mailboxAddons.mailboxId, row.payer), eq(mailboxAddons.kind, 'supervisor'), eq(mailboxAddons.status, 'active'))).limit(1);
  return addon ? row : null;
}

/**
 * A supervisor's mailbox session (`mbs_…`, from a single-use sign-in link): the supervisor on its one mailbox, while
 * the supervision lasts. REST takes it as `Authorization: Bearer mbs_…`; the mailbox doors as the password.
 */
export async function authenticateMailboxSession(db: DbOrTx, tokens: TokenService, credential: string): Promise<HolderPrincipal | null> {
  if (!credential.startsWith(MAILBOX_SESSION_PREFIX)) return null;
  const payload = await tokens.verifyTyped(credential.slice(MAILBOX_SESSION_PREFIX.length), SESSION_TYP);
  if (!payload || typeof payload.sub !== 'string' || typeof payload.mbx !== 'string' || typeof payload.sid !== 'string') return null;
  const mailbox = await liveSupervision(db, payload.sub, payload.mbx);
  if (!mailbox) return null;
  return {
    mailboxId: mailbox.mailboxId, partnerId: mailbox.partnerId, address: mailbox.address, status: mailbox.status, livemode: mailbox.livemode,
    actor: { kind: 'supervisor', supervisorId: payload.sub, signInId: payload.sid, mode: 'read_write' },
  };
}
