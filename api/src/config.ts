import path from 'node:path';

/** Every setting the server reads, validated once at start-up. The README's configuration table mirrors this. */
export interface AppConfig {
  databaseUrl: string | undefined;
  dataDir: string;
  host: string;
  port: number;
  publicUrl: string;
  logLevel: string;
  rateLimitPerMinute: number;
  pricesFile: string | undefined;
  oauthTokenTtlSeconds: number;
  idempotencyTtlHours: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}; got '${raw}'.`);
  }
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const port = integer(env, 'PORT', 3000, 0, 65535);
  const host = env.HOST || '127.0.0.1';
  const logLevel = env.LOG_LEVEL || 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent; got '${logLevel}'.`);
  }
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(`DATABASE_URL must be a postgres:// URL; got '${databaseUrl}'.`);
  }
  const publicUrl = env.PUBLIC_URL || `http://${host}:${port}`;
  try {
    new URL(publicUrl);
  } catch {
    throw new ConfigError(`PUBLIC_URL must be an absolute URL; got '${publicUrl}'.`);
  }
  return {
    databaseUrl,
    dataDir: path.resolve(env.DATA_DIR || '.data'),
    host,
    port,
    publicUrl: publicUrl.replace(/\/$/, ''),
    logLevel,
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 600, 1, 1_000_000),
    pricesFile: env.PRICES_FILE || undefined,
    oauthTokenTtlSeconds: integer(env, 'OAUTH_TOKEN_TTL_SECONDS', 900, 60, 86_400),
    idempotencyTtlHours: integer(env, 'IDEMPOTENCY_TTL_HOURS', 24, 1, 720),
  };
}
