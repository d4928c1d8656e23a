import type { DelegationMode } from '@pec-partner/db';
import { ProblemError } from '../../http/problem.ts';

/**
 * Who acts on a mailbox through the holder routes: the holder itself, a collaborator of a delegation
 * (multiutenza) signed in with its own e-mail and password, or a supervisor through a single-use sign-in link.
 */
export type MailboxActor =
  | { kind: 'holder' }
  | { kind: 'delegate'; delegationId: string; accountId: string; email: string; mode: DelegationMode }
  | { kind: 'supervisor'; supervisorId: string; signInId: string; mode: 'read_write' };

/** Every operation on a mailbox that a route declares (`config.mailboxOperation`); the auth hook checks it. */
export const mailboxOperations = [
  'send_message', 'list_folders', 'list_messages', 'read_message', 'download_message', 'update_message', 'delete_message',
  'read_log', 'manage_delegations', 'manage_supervision',
] as const;
export type MailboxOperation = (typeof mailboxOperations)[number];

type Capability = 'send' | 'read' | 'modify' | 'log' | 'holder';

const capabilityOf: Record<MailboxOperation, Capability> = {
  send_message: 'send',
  list_folders: 'read',
  list_messages: 'read',
  read_message: 'read',
  download_message: 'read',
  update_message: 'modify',
  delete_message: 'modify',
  read_log: 'log',
  manage_delegations: 'holder',
  manage_supervision: 'holder',
};

/**
 * What each mode may do. `send_only` reads too, but only the transactions it submitted itself (its sent copies and
 * their receipts): see `ownTransactionsOnly`. Managing delegations and supervision stays with the holder. A
 * supervisor's session acts as `read_write`: it reads and files messages but does not send.
 */
export const modeCapabilities: Record<DelegationMode | 'supervisor', ReadonlySet<Capability>> = {
  send_only: new Set(['send', 'read']),
  read_only: new Set(['read', 'log']),
  read_write: new Set(['read', 'modify', 'log']),
  full_access: new Set(['send', 'read', 'modify', 'log']),
  supervisor: new Set(['read', 'modify', 'log']),
};

/** Throws the 403 problem when the actor may not perform the operation; the holder may do everything. */
export function assertMayPerform(actor: MailboxActor, operation: MailboxOperation | undefined, label?: string): void {
  if (actor.kind === 'holder') return;
  const allowed = operation !== undefined && modeCapabilities[actor.kind === 'supervisor' ? 'supervisor' : actor.mode].has(capabilityOf[operation]);
  if (allowed) return;
  const name = operation ?? label ?? 'this operation';
  if (actor.kind === 'supervisor') {
    throw new ProblemError(403, 'supervisor_session_forbids', 'Forbidden',
      `A supervisor's mailbox session (mode read_write, no sending) does not allow ${name}.`, { mode: actor.mode, operation: name });
  }
  throw new ProblemError(403, 'delegation_mode_forbids', 'Forbidden',
    `Delegation mode ${actor.mode} does not allow ${name}.`, { mode: actor.mode, operation: name });
}

/** The delegation whose own transactions are all a `send_only` collaborator may see; null: the whole mailbox. */
export function ownTransactionsOnly(actor: MailboxActor): { delegationId: string } | null {
  return actor.kind === 'delegate' && actor.mode === 'send_only' ? { delegationId: actor.delegationId } : null;
}

/** Whether a mode may send (SMTP submission resolves only such delegations). */
export const modeMaySend = (mode: DelegationMode): boolean => modeCapabilities[mode].has('send');
