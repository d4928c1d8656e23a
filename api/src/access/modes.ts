import type { DelegationMode } from '@pec-partner/db';
import type { MailboxActor } from './principals.ts';

/**
 * Every operation on a mailbox that a door performs: REST routes declare theirs (`config.mailboxOperation`), the
 * protocol doors (IMAP, POP3, webmail, SMTP) ask for theirs before acting.
 */
export const mailboxOperations = [
  'send_message', 'list_folders', 'list_messages', 'read_message', 'download_message', 'update_message', 'delete_message',
  'store_message', 'manage_folders', 'read_log', 'manage_delegations', 'manage_supervision',
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
  // IMAP APPEND and COPY put a message into a folder; creating, renaming, deleting or subscribing user folders
  // changes the mailbox as moving a message does.
  store_message: 'modify',
  manage_folders: 'modify',
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

/** Whether the actor may perform the operation: the holder may do everything, the others what their mode allows. */
export function mayPerform(actor: MailboxActor, operation: MailboxOperation): boolean {
  if (actor.kind === 'holder') return true;
  return modeCapabilities[actor.kind === 'supervisor' ? 'supervisor' : actor.mode].has(capabilityOf[operation]);
}

/** The delegation whose own transactions are all a `send_only` collaborator may see; null: the whole mailbox. */
export function ownTransactionsOnly(actor: MailboxActor): { delegationId: string } | null {
  return actor.kind === 'delegate' && actor.mode === 'send_only' ? { delegationId: actor.delegationId } : null;
}

/** Whether a mode may send (SMTP submission resolves only such delegations). */
export const modeMaySend = (mode: DelegationMode): boolean => modeCapabilities[mode].has('send');
