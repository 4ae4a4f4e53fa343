/**
 * Chaos run (issue 16): builds on two servers over one PostgreSQL and one radosgw bucket, once undisturbed and
 * once with a random server, build node, signer or tester killed (SIGKILL) every few seconds and restarted.
 * Prints builds per minute side by side and the invariants of test/support/chaos.ts. The suite runs the same
 * harness at 8 builds (test/chaos.test.ts). Not a test: it never fails on timing.
 *
 *   npm run build && node dist/bench/chaos.js [--builds 30] [--every 4000] [--seed 16] [--only faults|none]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { chaos, seeded } from '../test/support/chaos.js';
import { startCluster } from '../test/support/cluster.js';

const { values: args } = parseArgs({
  options: {
    builds: { type: 'string', default: '30' },
    every: { type: 'string', default: '4000' },
    seed: { type: 'string', default: '16' },
    /** Run only one side: 'faults' or 'none' (both by default). */
    only: { type: 'string' },
  },
});
const sides = args.only === 'faults' ? [true] : args.only === 'none' ? [false] : [false, true];

const rows: string[] = [];
for (const faults of sides) {
  const c = await startCluster({ servers: 2, leaseSeconds: 6 });
  try {
    const r = await chaos(c, {
      builds: Number(args.builds),
      sources: Math.min(10, Number(args.builds)),
      faultEveryMs: Number(args.every),
      random: seeded(Number(args.seed)),
      faults,
    });
    const ok = r.builds.filter((b) => b.state === 'succeeded').length;
    const invariants =
      r.endedNotOnce.length === 0 &&
      r.lost.length === 0 &&
      r.duplicated.length === 0 &&
      r.leasedAfter === 0 &&
      r.ledger.gapless &&
      r.ledger.badCheckpoints.length === 0;
    rows.push(
      `| ${faults ? `kill -9 every ${Number(args.every) / 1000} s (${r.faults.length} faults)` : 'no faults'} | ${r.builds.length} | ${ok} | ${r.seconds.toFixed(0)} | ${((r.builds.length / r.seconds) * 60).toFixed(1)} | ${invariants ? 'hold' : `BROKEN ${JSON.stringify(r)}`} |`,
    );
    process.stderr.write(`${rows[rows.length - 1]}\n`);
    for (const b of r.builds.filter((x) => x.state !== 'succeeded'))
      process.stderr.write(`  build ${b.id} (${b.source}) ${b.state}: ${b.reason ?? 'no reason'}\n`);
  } finally {
    await c.stop();
  }
}
console.log(
  `\nChaos run: two servers, PostgreSQL, radosgw, one node/signer/tester (${os.cpus().length} cores, Node ${process.version})\n`,
);
console.log('| run | builds | succeeded | seconds | builds per minute | invariants |');
console.log('| --- | ---: | ---: | ---: | ---: | --- |');
for (const r of rows) console.log(r);
