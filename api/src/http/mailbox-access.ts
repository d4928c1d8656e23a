import { mayPerform, type MailboxOperation } from '../access/modes.ts';
import type { MailboxActor } from '../access/principals.ts';
import { ProblemError } from './problem.ts';

/**
 * The access layer's answer (`mayPerform`) as the API's 403 problem. `operation` undefined: a holder route that
 * declares none, which is the holder's alone; `label` names it in the problem then.
 */
export function assertMayPerform(actor: MailboxActor, operation: MailboxOperation | undefined, label?: string): void {
  if (actor.kind === 'holder') return;
  if (operation !== undefined && mayPerform(actor, operation)) return;
  const name = operation ?? label ?? 'this operation';
  if (actor.kind === 'supervisor') {
    throw new ProblemError(403, 'supervisor_session_forbids', 'Forbidden',
      `A supervisor's mailbox session (mode read_write, no sending) does not allow ${name}.`, { mode: actor.mode, operation: name });
  }
  throw new ProblemError(403, 'delegation_mode_forbids', 'Forbidden',
    `Delegation mode ${actor.mode} does not allow ${name}.`, { mode: actor.mode, operation: name });
}
