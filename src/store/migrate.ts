import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { Dialect } from './dialect.js';
import * as m0001 from './migrations/0001-initial.js';
import * as m0002 from './migrations/0002-sign-release.js';
import * as m0003 from './migrations/0003-build-target.js';
import * as m0004 from './migrations/0004-ledger.js';
import * as m0005 from './migrations/0005-witnesses.js';
import * as m0006 from './migrations/0006-repo-identity.js';
import * as m0007 from './migrations/0007-errata.js';
import * as m0008 from './migrations/0008-declared-packages.js';
import * as m0009 from './migrations/0009-token-expiry.js';
import * as m0010 from './migrations/0010-targets.js';
import * as m0011 from './migrations/0011-package-metadata.js';
import * as m0012 from './migrations/0012-push.js';
import * as m0013 from './migrations/0013-scale-out.js';
import * as m0014 from './migrations/0014-mirrors.js';
import * as m0015 from './migrations/0015-mirror-checks-retention.js';
import * as m0016 from './migrations/0016-platforms.js';
import * as m0017 from './migrations/0017-rpm-headers.js';
import * as m0018 from './migrations/0018-queue-partial-indexes.js';
import * as m0019 from './migrations/0019-metadata-gz-only.js';
import * as m0020 from './migrations/0020-queue-index-pages.js';
import * as m0021 from './migrations/0021-pg-complete-function.js';
import * as m0022 from './migrations/0022-pg-complete-fewer-statements.js';
import * as m0023 from './migrations/0023-pg-complete-four-statements.js';
import * as m0024 from './migrations/0024-lease-expiry-on-leases.js';
import * as m0025 from './migrations/0025-pg-lease-function.js';
import * as m0026 from './migrations/0026-role-vclock-index.js';

type DialectMigration = { up(db: Kysely<unknown>, dialect: Dialect): Promise<void> };

/** Numbered, append-only. Never edit a released migration: add the next number. */
const MIGRATIONS: Readonly<Record<string, DialectMigration>> = {
  '0001-initial': m0001,
  '0002-sign-release': m0002,
  '0003-build-target': m0003,
  '0004-ledger': m0004,
  '0005-witnesses': m0005,
  '0006-repo-identity': m0006,
  '0007-errata': m0007,
  '0008-declared-packages': m0008,
  '0009-token-expiry': m0009,
  '0010-targets': m0010,
  '0011-package-metadata': m0011,
  '0012-push': m0012,
  '0013-scale-out': m0013,
  '0014-mirrors': m0014,
  '0015-mirror-checks-retention': m0015,
  '0016-platforms': m0016,
  '0017-rpm-headers': m0017,
  '0018-queue-partial-indexes': m0018,
  '0019-metadata-gz-only': m0019,
  '0020-queue-index-pages': m0020,
  '0021-pg-complete-function': m0021,
  '0022-pg-complete-fewer-statements': m0022,
  '0023-pg-complete-four-statements': m0023,
  '0024-lease-expiry-on-leases': m0024,
  '0025-pg-lease-function': m0025,
  '0026-role-vclock-index': m0026,
};

/** Every migration's name, in the order they apply. */
export const MIGRATION_NAMES: readonly string[] = Object.keys(MIGRATIONS);

function providerFor(dialect: Dialect): MigrationProvider {
  return {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const [name, m] of Object.entries(MIGRATIONS)) out[name] = { up: (d) => m.up(d, dialect) };
      return out;
    },
  };
}

export async function migrateToLatest<DB>(db: Kysely<DB>, dialect: Dialect): Promise<string[]> {
  const { error, results } = await new Migrator({ db, provider: providerFor(dialect) }).migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Apply migrations up to and including `name` only (tests of a migration's data steps). */
export async function migrateTo<DB>(db: Kysely<DB>, dialect: Dialect, name: string): Promise<void> {
  const { error } = await new Migrator({ db, provider: providerFor(dialect) }).migrateTo(name);
  if (error) throw error instanceof Error ? error : new Error(String(error));
}

/** Migrations this code has that the database has not applied yet (a server started with --no-migrate). */
export async function pendingMigrations<DB>(db: Kysely<DB>, dialect: Dialect): Promise<string[]> {
  const all = await new Migrator({ db, provider: providerFor(dialect) }).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}
