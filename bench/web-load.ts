/**
 * The web interface under load (issue 19, papercut 4): wrk with 50 connections against a real `lenix server`
 * over 10,000 builds, the dashboard page side by side with the JSON it is built on (/api/v1/dashboard) and the
 * builds API, one page at a time, and the health check as the floor of this machine (wrk shares its cores);
 * prints requests/s and the latency percentiles wrk reports.
 * Target: the dashboard's p99 ≤ 20 ms. Needs wrk (apt-get install wrk). Not a test: it never fails on timing.
 *
 *   npm run build && node dist/bench/web-load.js [--builds 10000] [--seconds 10] [--connections 50]
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { seedBuilds, startBenchServer } from './support/web-seed.js';

const run = promisify(execFile);
const { values: args } = parseArgs({
  options: {
    builds: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
  },
});

/** One wrk run: requests/s and latency percentiles (ms) from `--latency`. */
async function wrk(url: string, accept: string): Promise<{ rps: number; p50: number; p99: number; errors: string }> {
  const { stdout } = await run('wrk', [
    '-t2',
    `-c${args.connections}`,
    `-d${args.seconds}s`,
    '--latency',
    '-H',
    `accept: ${accept}`,
    url,
  ]);
  const ms = (label: string) => {
    const m = new RegExp(`^\\s+${label}\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(stdout);
    if (!m) throw new Error(`wrk printed no ${label} latency:\n${stdout}`);
    return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2] as 'us' | 'ms' | 's'];
  };
  const rps = Number(/^Requests\/sec:\s+([\d.]+)$/m.exec(stdout)?.[1] ?? Number.NaN);
  const errors = /Non-2xx or 3xx responses: \d+|Socket errors: .*/.exec(stdout)?.[0] ?? '';
  return { rps, p50: ms('50%'), p99: ms('99%'), errors };
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-bench-web-load-'));
try {
  const file = path.join(dir, 'lenix.db');
  await seedBuilds(file, Number(args.builds));
  const { server, base } = await startBenchServer(dir, file);
  try {
    const targets: [string, string, string][] = [
      ['health (/api/v1/health): the floor', '/api/v1/health', 'application/json'],
      ['dashboard page (/)', '/', 'text/html'],
      ['dashboard JSON (/api/v1/dashboard)', '/api/v1/dashboard', 'application/json'],
      ['builds JSON (/api/v1/builds)', '/api/v1/builds', 'application/json'],
      ['builds page (/builds)', '/builds', 'text/html'],
    ];
    const rows: string[] = [];
    for (const [name, url, accept] of targets) {
      await wrk(`${base}${url}`, accept); // warm-up
      const r = await wrk(`${base}${url}`, accept);
      rows.push(
        `| ${name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(1)} ms | ${r.p99.toFixed(1)} ms |${r.errors ? ` ${r.errors}` : ''}`,
      );
    }
    console.log(
      `\nWeb under load: wrk -t2 -c${args.connections} -d${args.seconds}s, ${args.builds} builds, ${os.cpus().length} cores, Node ${process.version} (wrk on the same machine)\n`,
    );
    console.log('| what | requests/s | p50 | p99 |');
    console.log('| --- | ---: | ---: | ---: |');
    for (const r of rows) console.log(r);
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
