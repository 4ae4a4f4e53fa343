import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../core/clock.js';
import { DashboardService } from './dashboard.js';

/**
 * Issue 19, papercut 4: under load the dashboard cost one set of queries per request. Readers now share a read in
 * flight and reuse one younger than a quarter second, and each rendering is made once per read.
 */
test('readers share one dashboard read: in flight, and for a quarter second after', async () => {
  const clock = new ManualClock();
  let reads = 0;
  let release: () => void = () => undefined;
  const gate = () => new Promise<void>((r) => (release = r));
  let waiting = gate();
  const deps = {
    clock,
    config: { leaseMs: 30_000 },
    releases: { listReleases: async () => [] },
    store: {
      tasks: {
        queueLength: async () => {
          reads++;
          await waiting;
          return { x86_64: reads };
        },
        listInState: async () => [],
      },
      agents: { list: async () => [] },
      builds: { list: async () => [], get: async () => null },
    },
  };
  const errata = { store: { list: async () => [] } };
  const s = new DashboardService(deps as never, errata as never);
  // Fifty readers at once: one read.
  const crowd = Promise.all(Array.from({ length: 50 }, () => s.read()));
  release();
  const all = await crowd;
  assert.equal(reads, 1);
  assert.ok(all.every((d) => d === all[0]));
  // Within the quarter second: the same read; its renderings are made once.
  clock.advance(200);
  assert.equal(await s.read(), all[0]);
  let made = 0;
  for (let i = 0; i < 3; i++) s.memo(all[0]!, 'page', () => ++made);
  assert.equal(made, 1);
  // After it: a new read, which shows what changed.
  clock.advance(100);
  waiting = gate();
  const next = s.read();
  release();
  assert.deepEqual((await next).queue, { x86_64: 2 });
  assert.equal(reads, 2);
});
