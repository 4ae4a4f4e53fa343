import { hostArch } from '../rpm/arch.js';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { systemClock, type Clock } from '../core/clock.js';
import { Watcher } from '../intake/watcher.js';
import { openBlobStore, parseBlobStore } from '../store/blob-config.js';
import { openDatabase, parseDatabaseUrl } from '../store/dialect.js';
import { migrateToLatest, pendingMigrations } from '../store/migrate.js';
import { LenixError } from '../core/errors.js';
import { useKeyFolderBase } from '../crypto/gpg.js';
import { useProcessStarter } from '../exec/exec.js';
import { ReleaseStore } from '../store/release-store.js';
import { Store } from '../store/store.js';
import { createApp } from './app.js';
import type { App, Services } from './types.js';
import { hashToken, newToken } from './auth.js';
import { DEFAULT_CONFIG, type ServerConfig } from './context.js';
import { Notifier } from './notifier.js';
import { Leadership } from './leadership.js';
import { PgNotifyRelay } from '../store/pg-notify.js';
import type { ReplicaReads } from '../store/read-routing.js';

export interface ServerOptions {
  readonly dataDir: string;
  readonly database?: string | undefined; // postgres://… or a SQLite file; default DATA/lenix.db
  /** postgres://… of a streaming replica of `database` for public reads (read-your-writes for writers). */
  readonly databaseRead?: string | undefined;
  /** false: do not migrate at start, refuse to start on an outdated database (`lenix migrate` does it). */
  readonly migrate?: boolean;
  /** A folder or s3://BUCKET[/PREFIX]?endpoint=URL (blob-config.ts); default DATA/blobs. */
  readonly blobs?: string | undefined;
  readonly host?: string;
  readonly port?: number;
  readonly arches?: readonly string[];
  readonly adminTokenFile?: string | undefined;
  readonly config?: Partial<Omit<ServerConfig, 'dataDir' | 'arches'>>;
  readonly clock?: Clock;
  readonly log?: Logger;
}

export interface RunningServer {
  readonly url: string;
  readonly app: App;
  readonly store: Store;
  readonly services: Services;
  readonly adminToken: string | null;
  /** With `databaseRead`: which requests read from the replica. */
  readonly replica: ReplicaReads | null;
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  // The server's commands (git, createrepo_c, rpmkeys) start from a small child process (exec/exec.ts).
  useProcessStarter();
  const log = opts.log ?? pino({ level: process.env['LENIX_LOG_LEVEL'] ?? 'info', base: { role: 'server' } });
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  // The rpm databases that check signed uploads live in the data folder, where a killed server's are found again.
  await useKeyFolderBase(opts.dataDir);
  let dbConfig = parseDatabaseUrl(opts.database ?? path.join(opts.dataDir, 'lenix.db'));
  if (opts.databaseRead) {
    if (dbConfig.dialect !== 'postgres' || parseDatabaseUrl(opts.databaseRead).dialect !== 'postgres')
      throw new LenixError('BAD_REQUEST', 'a read replica (--database-read-url) needs PostgreSQL for both URLs');
    dbConfig = { ...dbConfig, readUrl: opts.databaseRead };
  }
  const { db, dialect, checkpointer, replica } = openDatabase(dbConfig, {
    checkpointInBackground: true,
    onConnectionLost: (err) => log.warn({ component: 'db', err: err.message }, 'database connection lost'),
  });
  if (opts.migrate === false) {
    const pending = await pendingMigrations(db, dialect);
    if (pending.length > 0) {
      await checkpointer?.stop();
      await db.destroy();
      throw new LenixError('SCHEMA_OUTDATED', `the database lacks ${pending.join(', ')}: run lenix migrate`);
    }
  } else await migrateToLatest(db, dialect);
  const store = new Store(db, dialect);
  const blobs = await openBlobStore(parseBlobStore(opts.blobs, opts.dataDir));
  await blobs.init();
  await blobs.clearTmp();
  const host = opts.host && opts.host !== '0.0.0.0' ? opts.host : '127.0.0.1';
  const config: ServerConfig = {
    ...DEFAULT_CONFIG,
    publicUrl: `http://${host}${opts.port ? `:${opts.port}` : ''}`,
    ...opts.config,
    dataDir: opts.dataDir,
    arches: opts.arches ?? [hostArch()],
  };
  const clock = opts.clock ?? systemClock;
  const notifier = new Notifier();
  // On PostgreSQL, wake-ups cross to the other servers of the same database (LISTEN/NOTIFY).
  const relay =
    dbConfig.dialect === 'postgres' ? await PgNotifyRelay.start(dbConfig.url, (t) => notifier.receive(t), log) : null;
  if (relay) notifier.attach(relay);

  // First start: create the admin token and write it where the operator can read it (mode 0600).
  let adminToken: string | null = null;
  if ((await store.tokens.count()) === 0) {
    adminToken = newToken();
    await store.tokens.create('admin', hashToken(adminToken), ['admin'], clock.now());
    const file = opts.adminTokenFile ?? path.join(opts.dataDir, 'admin.token');
    await writeFile(file, `${adminToken}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    log.info({ file }, 'admin token written');
  }

  const releases = new ReleaseStore(db);
  // Servers sharing the database elect one publisher, reaper and blob collector; alone, this one is all three.
  const leader = new Leadership({ leaders: store.leaders, clock, log });
  await leader.renew();
  leader.start();
  const { app, services } = await createApp({ store, releases, blobs, clock, notifier, log, config, leader }, replica);
  await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 8080 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? 8080);
  const url = `http://${opts.host && opts.host !== '0.0.0.0' ? opts.host : '127.0.0.1'}:${port}`;

  // Expired leases go back to the queue even when no agent is asking for work.
  const reaper = setInterval(() => {
    if (leader.holds('reaper'))
      void services.agents.reap().catch((err: unknown) => log.error({ err }, 'reaper failed'));
    void services.releases.publisher.tick(); // does nothing unless this server is the publisher
  }, 1000);
  reaper.unref();
  // Statements a failover or crash left unrecorded (a task ended, its statement did not): the reaper's
  // server records them once a build has been quiet for 30 s.
  const repairer = setInterval(() => {
    if (leader.holds('reaper'))
      void services.repairStatements(50, 30_000).catch((err: unknown) => log.error({ err }, 'statement repair failed'));
  }, 30_000);
  repairer.unref();
  // Rejected uploads leave blobs no record points at (an agent could fill the disk with them): collect those
  // past the grace period.
  const collectBlobs = async () => {
    if (!leader.holds('collector')) return;
    if (config.prune) await services.retention.prune(config.prune);
    const removed = await blobs.collect(await store.artifacts.referencedBlobs(), clock.now(), config.blobGraceMs);
    if (removed.length > 0) log.info({ component: 'blobs', removed: removed.length }, 'unreferenced blobs collected');
  };
  const collector = setInterval(
    () => void collectBlobs().catch((err: unknown) => log.error({ err }, 'blob collection failed')),
    config.blobGcIntervalMs,
  );
  collector.unref();
  // The mirror checker: one server (the reaper's) fetches every mirror's repomd.xml on a schedule.
  const mirrorChecker =
    config.mirrorCheckMs > 0
      ? setInterval(() => {
          if (leader.holds('reaper'))
            void services.mirrors.check().catch((err: unknown) => log.error({ err }, 'mirror check failed'));
        }, config.mirrorCheckMs)
      : null;
  mirrorChecker?.unref();
  const watcher = new Watcher(
    {
      watchedSources: async () => (await store.sources.list()).filter((s) => s.watch),
      buildNew: (s) => services.push.buildNew(s),
    },
    log,
    config.watchIntervalMs,
  );
  watcher.start();

  return {
    url,
    app,
    store,
    services,
    adminToken,
    replica: replica ?? null,
    async close() {
      clearInterval(reaper);
      clearInterval(repairer);
      clearInterval(collector);
      if (mirrorChecker) clearInterval(mirrorChecker);
      await services.releases.publisher.tick();
      await services.releases.publisher.close();
      await watcher.stop();
      await app.close();
      await leader.stop();
      await relay?.close();
      await checkpointer?.stop();
      await store.close();
      blobs.close?.();
    },
  };
}
