import { desc } from 'drizzle-orm';
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import { jwtSigningKeys, type Db } from '@pec-partner/db';
import type { Clock } from '../../clock.ts';
import { newId } from '../../ids.ts';
import type { Principal } from './service.ts';

const ALG = 'ES256';

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

/**
 * Issues and verifies OAuth access tokens (JWT, ES256). Keys live in the database so every process signs
 * with the same key and tokens survive restarts; the JWKS publishes every public key still known.
 */
export class TokenService {
  #keys = new Map<string, SigningKey>();
  #current: SigningKey | undefined;
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #issuer: string;
  readonly #ttlSeconds: number;

  constructor(db: Db, clock: Clock, issuer: string, ttlSeconds: number) {
    this.#db = db;
    this.#clock = clock;
    this.#issuer = issuer;
    this.#ttlSeconds = ttlSeconds;
  }

  get ttlSeconds(): number {
    return this.#ttlSeconds;
  }

  #ready: Promise<void> | undefined;

  /** Keys are loaded on first use, so building the app (e.g. to print its OpenAPI document) needs no database. */
  #ensureReady(): Promise<void> {
    this.#ready ??= this.#init().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  /** Loads the persisted keys, creating the first one when there is none. */
  async #init(): Promise<void> {
    await this.#load();
    if (this.#current) return;
    const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
    const kid = newId('jwk', this.#clock.now());
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: ALG, use: 'sig' };
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: ALG };
    await this.#db.insert(jwtSigningKeys).values({ kid, alg: ALG, privateJwk, publicJwk }).onConflictDoNothing();
    // Another process may have raced us; whichever key is newest in the table wins for everyone.
    await this.#load();
  }

  async #load(): Promise<void> {
    const rows = await this.#db.select().from(jwtSigningKeys).orderBy(desc(jwtSigningKeys.kid));
    for (const row of rows) {
      if (this.#keys.has(row.kid)) continue;
      const privateKey = (await importJWK(row.privateJwk as JWK, row.alg)) as CryptoKey;
      const publicKey = (await importJWK(row.publicJwk as JWK, row.alg)) as CryptoKey;
      this.#keys.set(row.kid, { kid: row.kid, privateKey, publicKey, publicJwk: row.publicJwk as JWK });
    }
    const newest = rows[0];
    if (newest) this.#current = this.#keys.get(newest.kid);
  }

  /**
   * Other short-lived tokens of the app, signed with the same keys but told apart by `typ` (a token of one type is
   * never accepted as another, nor as an access token): e.g. supervisor sign-in links and mailbox sessions.
   */
  async sign(typ: string, input: { subject: string; jti: string; ttlSeconds: number; claims?: Record<string, unknown> }): Promise<string> {
    await this.#ensureReady();
    const key = this.#current;
    if (!key) throw new Error('no signing key could be loaded or created');
    const now = Math.floor(this.#clock.now().getTime() / 1000);
    return new SignJWT(input.claims ?? {})
      .setProtectedHeader({ alg: ALG, kid: key.kid, typ })
      .setIssuer(this.#issuer)
      .setAudience(this.#issuer)
      .setSubject(input.subject)
      .setJti(input.jti)
      .setIssuedAt(now)
      .setExpirationTime(now + input.ttlSeconds)
      .sign(key.privateKey);
  }

  /** The payload of a valid, unexpired token of this `typ`, or null. */
  async verifyTyped(token: string, typ: string): Promise<JWTPayload | null> {
    await this.#ensureReady();
    try {
      const { payload } = await jwtVerify(token, async (header) => {
        if (header.kid && !this.#keys.has(header.kid)) await this.#load();
        const key = header.kid ? this.#keys.get(header.kid) : undefined;
        if (!key) throw new Error('unknown key id');
        return key.publicKey;
      }, { issuer: this.#issuer, audience: this.#issuer, algorithms: [ALG], typ, currentDate: this.#clock.now() });
      return payload;
    } catch {
      return null;
    }
  }

  async issue(principal: Principal): Promise<string> {
    await this.#ensureReady();
    const key = this.#current;
    if (!key) throw new Error('no signing key could be loaded or created');
    const now = Math.floor(this.#clock.now().getTime() / 1000);
    return new SignJWT({ key: principal.apiKeyId, livemode: principal.livemode })
      .setProtectedHeader({ alg: ALG, kid: key.kid, typ: 'at+jwt' })
      .setIssuer(this.#issuer)
      .setAudience(this.#issuer)
      .setSubject(principal.partnerId)
      .setJti(newId('tok', this.#clock.now()))
      .setIssuedAt(now)
      .setExpirationTime(now + this.#ttlSeconds)
      .sign(key.privateKey);
  }

  /** Returns the principal a valid token names, or null for any invalid, expired or foreign token. */
  async verify(token: string): Promise<Principal | null> {
    await this.#ensureReady();
    try {
      const { payload } = await jwtVerify(
        token,
        async (header) => {
          if (header.kid && !this.#keys.has(header.kid)) await this.#load();
          const key = header.kid ? this.#keys.get(header.kid) : undefined;
          if (!key) throw new Error('unknown key id');
          return key.publicKey;
        },
        {
          issuer: this.#issuer,
          audience: this.#issuer,
          algorithms: [ALG],
          typ: 'at+jwt',
          currentDate: this.#clock.now(),
        },
      );
      if (typeof payload.sub !== 'string' || typeof payload.key !== 'string') return null;
      // Tokens from before test mode carry no `livemode`: they were all live.
      return { partnerId: payload.sub, apiKeyId: payload.key, livemode: payload.livemode !== false };
    } catch {
      return null;
    }
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    await this.#ensureReady();
    return { keys: [...this.#keys.values()].map((key) => key.publicJwk) };
  }
}
