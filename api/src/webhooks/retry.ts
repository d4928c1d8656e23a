/**
 * The Standard Webhooks schedule: after the first attempt, retries 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h
 * later, about a day and a quarter in all. After the last one the delivery is given up.
 */
export const RETRY_DELAYS_MS = [5_000, 5 * 60_000, 30 * 60_000, 2 * 3_600_000, 5 * 3_600_000, 10 * 3_600_000, 10 * 3_600_000] as const;

/** ±20 %: receivers that come back after an outage are not hit by every delayed delivery in the same second. */
export const RETRY_JITTER = 0.2;

/** How long to wait after the `failedAttempts`-th failed attempt, or null when that was the last one. */
export function retryDelayMs(failedAttempts: number, random: () => number = Math.random): number | null {
  const base = RETRY_DELAYS_MS[failedAttempts - 1];
  if (base === undefined) return null;
  return Math.round(base * (1 - RETRY_JITTER + 2 * RETRY_JITTER * random()));
}
