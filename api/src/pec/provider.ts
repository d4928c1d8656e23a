import { readFile } from 'node:fs/promises';
import { eq } from 'drizzle-orm';
import { providerIdentities, type Db } from '@pec-partner/db';
import type { Clock } from '../clock.ts';
import type { PecConfig } from '../config.ts';
import { createProviderIdentity, loadProviderIdentity, type ProviderIdentity } from './identity.ts';

const CURRENT = 'current';
const SANDBOX = 'sandbox';

/** The sandbox's provider name: its certificate's O and CN, daticert `gestore-emittente` of every test message. */
export const sandboxProviderName = (providerName: string): string => `${providerName} (SANDBOX)`;

/**
 * The sandbox's own signing identity (test mode), generated like the live one and kept in the database beside it:
 * subject `O=<provider> (SANDBOX), CN=Posta Certificata <provider> (SANDBOX) - senza valore legale`, issued by a CA
 * of its own and listed in no provider index, so a test receipt never verifies as one of the live provider's.
 */
export async function ensureSandboxIdentity(db: Db, clock: Clock, config: PecConfig, serviceDomain: string): Promise<ProviderIdentity> {
  return storedOrCreated(db, clock, SANDBOX, () =>
    createProviderIdentity({ providerName: sandboxProviderName(config.providerName), domain: serviceDomain, now: clock.now(), commonNameNote: 'senza valore legale' }));
}

/**
 * The provider's signing identity: from the configured PEM files when given, otherwise the one in the database,
 * created on first start. Concurrent first starts race on the insert; the loser reads the winner's identity,
 * so every process signs with the same key.
 */
export async function ensureProviderIdentity(db: Db, clock: Clock, config: PecConfig, serviceDomain: string): Promise<ProviderIdentity> {
  if (config.certificateFile && config.privateKeyFile && config.caCertificateFile) {
    const [certificatePem, privateKeyPem, caCertificatePem] = await Promise.all(
      [config.certificateFile, config.privateKeyFile, config.caCertificateFile].map((file) => readFile(file, 'utf8')),
    );
    return loadProviderIdentity({ providerName: config.providerName, certificatePem: certificatePem!, privateKeyPem: privateKeyPem!, caCertificatePem: caCertificatePem! });
  }
  return storedOrCreated(db, clock, CURRENT, () => createProviderIdentity({ providerName: config.providerName, domain: serviceDomain, now: clock.now() }));
}

/**
 * The identity stored under `id`, created on first need. Concurrent first starts race on the insert; the loser
 * reads the winner's identity, so every process signs with the same key.
 */
async function storedOrCreated(db: Db, clock: Clock, id: string, create: () => ReturnType<typeof createProviderIdentity>): Promise<ProviderIdentity> {
  const stored = await read(db, id);
  if (stored) return stored;
  const created = await create();
  await db
    .insert(providerIdentities)
    .values({
      id,
      providerName: created.providerName,
      serviceAddress: created.serviceAddress,
      caCertificatePem: created.caCertificatePem,
      certificatePem: created.certificatePem,
      privateKeyPem: created.privateKeyPem,
      createdAt: clock.now(),
    })
    .onConflictDoNothing();
  return (await read(db, id))!;
}

async function read(db: Db, id = CURRENT): Promise<ProviderIdentity | null> {
  const [row] = await db.select().from(providerIdentities).where(eq(providerIdentities.id, id));
  if (!row) return null;
  return loadProviderIdentity({ providerName: row.providerName, certificatePem: row.certificatePem, privateKeyPem: row.privateKeyPem, caCertificatePem: row.caCertificatePem });
}
