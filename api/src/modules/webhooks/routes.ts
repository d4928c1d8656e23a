import type { App, AppDeps } from '../../deps.ts';
import type { WebhookDispatcher } from '../../webhooks/dispatcher.ts';

/** /v1/webhook-endpoints…, POST /v1/events/{id}/redeliver. */
export async function webhookRoutes(_app: App, _deps: AppDeps & { webhooks: WebhookDispatcher }): Promise<void> {}
