import { AsyncLocalStorage } from 'node:async_hooks';

/** The one source of "now". Jobs, timers and timestamps read it so tests can move time forward. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock tests drive by hand. */
export class ManualClock implements Clock {
  #ms: number;
  constructor(start: Date | string = new Date()) {
    this.#ms = new Date(start).getTime();
  }
  now(): Date {
    return new Date(this.#ms);
  }
  advance(ms: number): void {
    this.#ms += ms;
  }
  set(to: Date | string): void {
    this.#ms = new Date(to).getTime();
  }
}

/** The frozen time of the test world the current code works for (a request of its, or a step of its clock's advance). */
const worldTime = new AsyncLocalStorage<{ at: Date | null }>();

/**
 * Runs `fn` (and everything it starts) at a test world's frozen time: `deps.clock.now()` answers `at` inside it.
 * `null` runs it on real time, also inside a frozen context.
 */
export function runAtWorldTime<T>(at: Date | null, fn: () => T): T {
  return worldTime.run({ at }, fn);
}

/**
 * The application's clock (`deps.clock`): real time, except inside `runAtWorldTime`, where it is the frozen time of
 * the test world being served (see api/src/modules/test-clocks). Services read it as any clock, so a test world's
 * creation dates, terms and expiries follow its test clock without a clock threaded through every call.
 */
export class WorldClock implements Clock {
  readonly real: Clock;
  constructor(real: Clock) {
    this.real = real;
  }
  now(): Date {
    const at = worldTime.getStore()?.at;
    return at ? new Date(at.getTime()) : this.real.now();
  }
}

/**
 * Real time whatever world is being served: for what must agree with processes that know no world (event dates
 * and their webhook deliveries, security lifetimes such as sign-in links).
 */
export function realNow(clock: Clock): Date {
  return clock instanceof WorldClock ? clock.real.now() : clock.now();
}
