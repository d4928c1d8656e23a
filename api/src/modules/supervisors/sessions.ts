import { and, eq, gt, inArray, isNull } from 'drizzle-orm';
import { mailboxAddons, mailboxes, supervisedMailboxes, supervisors, supervisorSignIns, type DbOrTx } from '@pec-partner/db';
import { realNow, type Clock } from '../../clock.ts';
import { ProblemError } from '../../http/problem.ts';
import { newId } from '../../ids.ts';
import type { HolderPrincipal } from '../messages/holders.ts';
import { SIGN_IN_STATUSES } from '../messages/holders.ts';
import type { TokenService } from '../partners/tokens.ts';

/** Sign-in links are JWTs of their own type, valid 5 minutes and good for one exchange. */
export const SIGN_IN_TYP = 'supervisor-sign-in+jwt';
export const SIGN_IN_TTL_SECONDS = 300;
/** The session a link is exchanged for: a JWT of another type, valid 30 minutes, sent as `Bearer mbs_…`. */
export const SESSION_TYP = 'mailbox-session+jwt';
export const SESSION_TTL_SECONDS = 1800;
export const MAILBOX_SESSION_PREFIX = 'mbs_';

export interface SessionDeps {
  db: DbOrTx;
  clock: Clock;
  tokens: TokenService;
}

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

/** Issues a single-use sign-in link (its `jti` recorded) for a mailbox the caller has checked is supervised. */
export async function issueSignInLink(deps: SessionDeps, supervisorId: string, mailboxId: string) {
  // Real time, also in a test world on its test clock: the link is a credential its JWT bounds in real time.
  const now = realNow(deps.clock);
  const jti = newId('ssi', now);
  const expiresAt = new Date(Math.floor(now.getTime() / 1000) * 1000 + SIGN_IN_TTL_SECONDS * 1000);
  await deps.db.insert(supervisorSignIns).values({ jti, supervisorId, mailboxId, expiresAt });
  const token = await deps.tokens.sign(SIGN_IN_TYP, { subject: supervisorId, jti, ttlSeconds: SIGN_IN_TTL_SECONDS, claims: { mbx: mailboxId } });
  return { object: 'supervisor_sign_in_link' as const, id: jti, supervisor: supervisorId, mailbox: mailboxId, token, expires_at: expiresAt.toISOString() };
}

const invalidLink = () => new ProblemError(401, 'invalid_sign_in_link', 'Authentication required', 'The sign-in link is invalid or expired; ask for a new one.');

/**
 * Exchanges a sign-in link once for a mailbox session. The `used_at` update is conditional, so of two concurrent
 * exchanges exactly one wins; the second use of a link is 410 `sign_in_link_used`.
 */
export async function exchangeSignInLink(deps: SessionDeps, token: string) {
  const payload = await deps.tokens.verifyTyped(token, SIGN_IN_TYP);
  if (!payload || typeof payload.jti !== 'string' || typeof payload.sub !== 'string' || typeof payload.mbx !== 'string') throw invalidLink();
  const now = realNow(deps.clock);
  const [used] = await deps.db.update(supervisorSignIns).set({ usedAt: now })
    .where(and(eq(supervisorSignIns.jti, payload.jti), isNull(supervisorSignIns.usedAt), gt(supervisorSignIns.expiresAt, now)))
    .returning();
  if (!used) {
    const [row] = await deps.db.select().from(supervisorSignIns).where(eq(supervisorSignIns.jti, payload.jti));
    if (row?.usedAt) throw new ProblemError(410, 'sign_in_link_used', 'Gone', `This sign-in link was already used on ${row.usedAt.toISOString()}; links work once.`);
    throw invalidLink();
  }
  if (used.supervisorId !== payload.sub || used.mailboxId !== payload.mbx) throw invalidLink();
  const mailbox = await liveSupervision(deps.db, used.supervisorId, used.mailboxId);
  if (!mailbox) throw new ProblemError(403, 'supervision_ended', 'Forbidden', 'The mailbox is no longer supervised, or the supervisor add-on has ended.');
  const session = await deps.tokens.sign(SESSION_TYP, { subject: used.supervisorId, jti: newId('mss', now), ttlSeconds: SESSION_TTL_SECONDS, claims: { mbx: used.mailboxId, sid: used.jti } });
  return {
    object: 'mailbox_session' as const,
    token: MAILBOX_SESSION_PREFIX + session,
    token_type: 'Bearer' as const,
    supervisor: used.supervisorId,
    mailbox: used.mailboxId,
    address: mailbox.address,
    mode: 'read_write' as const,
    can_send: false as const,
    expires_at: new Date(Math.floor(now.getTime() / 1000) * 1000 + SESSION_TTL_SECONDS * 1000).toISOString(),
  };
}

/** `Authorization: Bearer mbs_…` on holder routes: the supervisor on its one mailbox, while the supervision lasts. */
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
