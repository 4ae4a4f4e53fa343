import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chaos, seeded } from './support/chaos.js';
import { type Cluster, startCluster } from './support/cluster.js';
import { lenix } from './support/cli.js';
import { DnfClient } from './support/dnf.js';

/**
 * Issue 16, acceptance 3, at the suite's size (bench/chaos.ts runs it larger): builds run on two servers over
 * one PostgreSQL and one radosgw bucket while a random server, build node, signer or tester is killed with
 * SIGKILL every few seconds and started again. Afterwards every build ended exactly once, no artifact is lost
 * or duplicated, nothing is leased, the ledger is gapless with every checkpoint a prefix of it, and the builds
 * that passed their tests are released and install with dnf.
 */
describe('chaos: processes killed while building', { timeout: 1_500_000 }, () => {
  let c: Cluster;
  const seed = Number(process.env['LENIX_CHAOS_SEED'] ?? 16);

  before(async () => {
    c = await startCluster({ servers: 2, leaseSeconds: 6 });
  });
  after(async () => {
    await c?.stop();
  });

  test(`8 builds, a fault every 4 s (seed ${seed})`, async () => {
    const r = await chaos(c, { builds: 8, sources: 4, faultEveryMs: 4000, random: seeded(seed), faults: true });
    process.stderr.write(
      `# chaos: ${r.builds.length} builds in ${r.seconds.toFixed(0)} s, faults: ${r.faults.join(' ')}\n`,
    );
    assert.ok(r.faults.length >= 2, 'faults happened while building');
    for (const b of r.builds) {
      assert.ok(['succeeded', 'failed'].includes(b.state), `build ${b.id}: ${b.state}`);
      if (b.state === 'failed') assert.ok(b.reason, `build ${b.id} failed with a reason`);
    }
    assert.deepEqual(r.endedNotOnce, [], 'every build ended exactly once');
    assert.deepEqual(r.lost, [], 'no artifact lost');
    assert.deepEqual(r.duplicated, [], 'no artifact duplicated');
    assert.equal(r.leasedAfter, 0, 'no lease held by a dead agent');
    assert.ok(r.ledger.gapless && r.ledger.entries > 0);
    assert.deepEqual(r.ledger.badCheckpoints, [], 'every checkpoint is the root of a prefix of the log');

    const tested = r.builds.filter((b) => b.tasks.some((t) => t.kind === 'test' && t.state === 'succeeded'));
    assert.ok(tested.length > 0, 'some builds passed their tests despite the faults');
    // One build of each source (two builds of one source are one NEVRA with other bytes: a release refuses that).
    const passed = tested.filter((b, i) => tested.findIndex((x) => x.source === b.source) === i);
    const env = { LENIX_CONFIG: path.join(c.dir, 'none.json'), LENIX_SERVER: c.servers[1]!.url, LENIX_TOKEN: c.admin };
    assert.equal((await lenix(['repo', 'create', 'chaos', '--arch', 'x86_64'], env)).code, 0);
    const rel = await lenix(
      ['release', ...passed.map((b) => String(b.id)), '--to', 'chaos', '--approve', '--wait', '--json'],
      env,
    );
    assert.equal(rel.code, 0, rel.stderr);
    assert.equal((JSON.parse(rel.stdout) as { state: string }).state, 'published');
    const names = [...new Set(passed.map((b) => b.source))];
    for (const [i, server] of c.servers.entries()) {
      const reposDir = path.join(c.dir, `client-${i}`, 'repos.d');
      await mkdir(reposDir, { recursive: true });
      await writeFile(path.join(reposDir, 'chaos.repo'), await (await fetch(`${server.url}/repos/chaos.repo`)).text());
      const d = new DnfClient(path.join(c.dir, `client-${i}`), reposDir);
      await d.base(path.join(c.dir, 'tester-work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm'));
      const got = await d.dnf(`install ${names.join(' ')}`);
      assert.equal(got.code, 0, got.out);
    }
  });
});
