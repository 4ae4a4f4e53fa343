import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { LenixError, type ErrorCode } from '../../src/core/errors.js';
import { openDatabase, type DatabaseConfig } from '../../src/store/dialect.js';
import { migrateTo, migrateToLatest } from '../../src/store/migrate.js';
import type { AgentRecord } from '../../src/store/records.js';
import { Store } from '../../src/store/store.js';
import { startPostgres, type TestPostgres } from './postgres.js';

/** A build task's result as the store keeps it (core/protocol.ts BuildTaskResult). */
export const BUILDROOT = {
  buildroot: {
    hostOs: 'test',
    kernel: '6.1',
    arch: 'x86_64',
    tools: {},
    packageManager: 'none' as const,
    packages: [],
    sandbox: 'bwrap',
  },
};

/**
 * The storage conformance suite: one set of behaviours, run against every dialect (style.md §3).
 * PostgreSQL is a throwaway server started from Debian's binaries for this file.
 */
type Factory = { name: string; open(label: string): Promise<DatabaseConfig>; teardown(): Promise<void> };

let pg: TestPostgres | null = null;
let tmp = '';
const factories: Factory[] = [
  {
    name: 'sqlite',
    async open(label) {
      if (!tmp) tmp = await mkdtemp(path.join(os.tmpdir(), 'lenix-store-'));
      return { dialect: 'sqlite', file: path.join(tmp, `${label}.db`) };
    },
    async teardown() {
      if (tmp) await rm(tmp, { recursive: true, force: true });
    },
  },
  {
    name: 'postgres',
    async open(label) {
      pg ??= await startPostgres();
      return { dialect: 'postgres', url: await pg.newDatabase(label), poolSize: 20 };
    },
    async teardown() {
      await pg?.stop();
    },
  },
];

export async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof LenixError, `expected LenixError ${code}, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** What each conformance test gets: a fresh migrated store, the clock, and the seeding helpers. */
export interface StoreKit {
  readonly dialect: string;
  /** A new store, migrated to the latest, or only up to migration `upTo` (then migrate it on yourself). */
  fresh(upTo?: string): Promise<Store>;
  readonly clock: ManualClock;
  seed(store: Store, name?: string, tasks?: number): ReturnType<typeof seedWith>;
  agent(store: Store, name?: string, arches?: string[]): Promise<AgentRecord>;
}

async function seedWith(store: Store, clock: ManualClock, name: string, tasks: number) {
  const source = await store.sources.add({ name, url: '/srv/git/x', branch: 'main', watch: false }, clock.now());
  const commit = await store.sources.recordCommit(
    source.id,
    { sha: 'a'.repeat(40), tree: 'b'.repeat(40), committedAt: 1_700_000_000, subject: 'init' },
    clock.now(),
  );
  const builds = [];
  for (let i = 0; i < tasks; i++) {
    builds.push(
      await store.builds.create(
        {
          sourceId: source.id,
          commitId: commit.id,
          ref: 'main',
          priority: 0,
          arches: ['x86_64'],
          specPath: `${name}.spec`,
          packageName: name,
          packageEvr: '1-1',
          createdBy: 'test',
          maxAttempts: 2,
        },
        clock.now(),
      ),
    );
  }
  return { source, commit, builds };
}

/** Run `body`'s tests once per dialect, each in its own describe with its own databases. */
export function storeSuite(title: string, body: (kit: StoreKit) => void): void {
  for (const f of factories) {
    describe(`${title}: ${f.name}`, () => {
      let counter = 0;
      const stores: Store[] = [];
      const clock = new ManualClock();
      const kit: StoreKit = {
        dialect: f.name,
        clock,
        async fresh(upTo?: string) {
          const cfg = await f.open(`t${process.pid}_${++counter}`);
          const { db, dialect } = openDatabase(cfg);
          if (upTo) await migrateTo(db, dialect, upTo);
          else await migrateToLatest(db, dialect);
          const store = new Store(db, dialect);
          stores.push(store);
          return store;
        },
        seed: (store, name = 'hello', tasks = 1) => seedWith(store, clock, name, tasks),
        async agent(store, name = 'n1', arches = ['x86_64', 'noarch', 'src']) {
          const tokenId = await store.tokens.create(
            name,
            `hash-${name}-${Math.random()}`,
            ['agent:build'],
            clock.now(),
          );
          return store.agents.register({ name, role: 'build', arches, capabilities: {}, tokenId }, clock.now());
        },
      };
      after(async () => {
        for (const s of stores) await s.close();
        await f.teardown();
      });
      body(kit);
    });
  }
}
