import { and, eq, gt, isNull } from 'drizzle-orm';
import { supervisorSignIns, type DbOrTx } from '@pec-partner/db';
import { liveSupervision, MAILBOX_SESSION_PREFIX, SESSION_TTL_SECONDS, SESSION_TYP } from '../../access/supervisor-sessions.ts';
import { realNow, type Clock } from '../../clock.ts';
import { ProblemError } from '../../http/problem.ts';
import { newId } from '../../ids.ts';
import type { TokenService } from '../partners/tokens.ts';

/** Sign-in links are JWTs of their own type, valid 5 minutes and good for one exchange. */
export const SIGN_IN_TYP = 'supervisor-sign-in+jwt';
export const SIGN_IN_TTL_SECONDS = 300;

export interface SessionDeps {
  db: DbOrTx;
  clock: Clock;
  tokens: TokenService;
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
