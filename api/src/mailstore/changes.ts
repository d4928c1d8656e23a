/**
 * Wakes whoever watches a mailbox (IMAP IDLE, POP3 has no push) when any process changes it. The database triggers
 * send `NOTIFY mailbox_changes, '<mailbox id>'` at commit; one LISTEN connection per process fans that out to the
 * sessions of that mailbox. A session re-reads what changed from the store: the notification carries no data.
 */
export type Listen = (channel: string, onNotify: (payload: string) => void) => Promise<{ unlisten(): Promise<void> }>;

export const MAILBOX_CHANGES_CHANNEL = 'mailbox_changes';

export class MailboxChanges {
  readonly #watchers = new Map<string, Set<() => void>>();
  #listening: Promise<{ unlisten(): Promise<void> }> | null = null;

  constructor(private readonly listen: Listen) {}

  /** Starts listening (once); resolves when the LISTEN is in place, so that no change after it is missed. */
  async start(): Promise<void> {
    this.#listening ??= this.listen(MAILBOX_CHANGES_CHANNEL, (payload) => this.notify(payload));
    await this.#listening;
  }

  /** Calls `wake` after every committed change of the mailbox until the returned function is called. */
  watch(mailboxId: string, wake: () => void): () => void {
    let set = this.#watchers.get(mailboxId);
    if (!set) this.#watchers.set(mailboxId, (set = new Set()));
    set.add(wake);
    return () => {
      set.delete(wake);
      if (set.size === 0) this.#watchers.delete(mailboxId);
    };
  }

  /** Also called directly by this process after its own changes, which saves waiting for the round trip. */
  notify(mailboxId: string): void {
    for (const wake of this.#watchers.get(mailboxId) ?? []) wake();
  }

  async stop(): Promise<void> {
    const listening = this.#listening;
    this.#listening = null;
    if (listening) await (await listening).unlisten().catch(() => {});
  }
}
