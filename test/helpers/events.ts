import { stampLivemode } from '../../api/src/http/livemode.ts';

/**
 * A stored event as the API and webhooks show it: with `livemode` on the event and on every resource in it, stamped
 * at serialization (the stored data carries no world; its partner's is the world). Test suites here are live.
 */
export function asShown<T extends object>(event: T, livemode = true): T {
  stampLivemode(event, livemode);
  return event;
}
