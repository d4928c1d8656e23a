import type { App, AppDeps } from '../../deps.ts';

/** GET /v1/events, GET /v1/events/{id}. */
export async function eventRoutes(_app: App, _deps: AppDeps): Promise<void> {}
