import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { hashToken, newToken } from '../../src/server/auth.js';
import { openDatabase } from '../../src/store/dialect.js';
import { migrateToLatest } from '../../src/store/migrate.js';
import { Store } from '../../src/store/store.js';
import { freePort } from '../../test/support/cli.js';

const BIN = fileURLToPath(new URL('../../../bin/lenix.js', import.meta.url));

/** A SQLite database with `builds` builds of 50 sources, and a build node's token. */
export async function seedBuilds(file: string, builds: number): Promise<{ token: string; seconds: number }> {
  const t0 = performance.now();
  const { db, dialect } = openDatabase({ dialect: 'sqlite', file });
  await migrateToLatest(db, dialect);
  const store = new Store(db, dialect);
  const now = Date.now();
  for (let s = 0; s < 50; s++) {
    const source = await store.sources.add(
      { name: `pkg-${s}`, url: `https://git.example.org/rpms/pkg-${s}.git`, branch: 'main', watch: false },
      now,
    );
    const commit = await store.sources.recordCommit(
      source.id,
      { sha: s.toString(16).padStart(40, '0'), tree: 'f'.repeat(40), committedAt: 1, subject: 'bench' },
      now,
    );
    for (let i = 0; i < builds / 50; i++) {
      await store.builds.create(
        {
          sourceId: source.id,
          commitId: commit.id,
          ref: 'main',
          priority: 0,
          arches: ['x86_64', 'aarch64'],
          specPath: 'p.spec',
          packageName: `pkg-${s}`,
          packageEvr: `1.${i}-1`,
          createdBy: i % 3 ? 'alice' : 'bob',
          maxAttempts: 3,
        },
        now + i,
      );
    }
  }
  const token = newToken();
  await store.tokens.create('bench-node', hashToken(token), ['agent:build'], now);
  await store.close();
  return { token, seconds: (performance.now() - t0) / 1000 };
}

/** A real `lenix server` process over that database (logging warnings only). */
export async function startBenchServer(dir: string, file: string): Promise<{ server: ChildProcess; base: string }> {
  const port = await freePort();
  const server = spawn(process.execPath, [BIN, 'server', '--data', dir, '--port', String(port), '--database', file], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LENIX_LOG_LEVEL: 'warn' },
  });
  await new Promise<void>((resolve, reject) => {
    server.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
    server.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  return { server, base: `http://127.0.0.1:${port}` };
}
