import type { DelegationMode, MailboxStatus } from '@pec-partner/db';

/**
 * Who acts on a mailbox, whatever the door: the holder itself, a collaborator of a delegation (multiutenza) signed
 * in with its own e-mail and password, or a supervisor through a single-use sign-in link.
 */
export type MailboxActor =
  | { kind: 'holder' }
  | { kind: 'delegate'; delegationId: string; accountId: string; email: string; mode: DelegationMode }
  | { kind: 'supervisor'; supervisorId: string; signInId: string; mode: 'read_write' };

/**
 * Whoever is signed in to one mailbox, at any door (REST, SMTP submission, IMAP, POP3, webmail). `actor` says who
 * acts: the holder itself, a delegation's collaborator (its own credentials, bound to a mode), or a supervisor's
 * session.
 */
export interface HolderPrincipal {
  mailboxId: string;
  partnerId: string;
  address: string;
  status: MailboxStatus;
  actor: MailboxActor;
  /** False for a sandbox mailbox. */
  livemode: boolean;
}
