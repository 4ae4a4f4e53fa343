/**
 * The web interface (issue 7): with 10,000 builds in the database, how long the server takes to render the
 * builds list (first page, a filtered page, a NEVRA search, an older page) and a build page, measured over
 * loopback against a real `lenix server` process, side by side with the JSON API the pages are built on;
 * then 500 simultaneous followers of one task's live log, each of which must receive every line.
 * Not a test: it never fails on timing.
 *
 *   npm run build && node dist/bench/web.js [--builds 10000] [--requests 300] [--followers 500] [--lines 200]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { seedBuilds, startBenchServer } from './support/web-seed.js';

const { values: args } = parseArgs({
  options: {
    builds: { type: 'string', default: '10000' },
    requests: { type: 'string', default: '300' },
    followers: { type: 'string', default: '500' },
    lines: { type: 'string', default: '200' },
  },
});
const BUILDS = Number(args.builds);
const REQUESTS = Number(args.requests);
const FOLLOWERS = Number(args.followers);
const LINES = Number(args.lines);

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0;

async function timeGets(
  base: string,
  url: string,
  accept: string,
): Promise<{ p50: number; p99: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = performance.now();
    const res = await fetch(`${base}${url}`, { headers: { accept } });
    const body = await res.text();
    times.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status} ${body.slice(0, 200)}`);
    bytes = body.length;
  }
  return { p50: pct(times, 0.5), p99: pct(times, 0.99), bytes };
}

async function post(base: string, token: string, url: string, body: unknown, raw = false) {
  const res = await fetch(`${base}${url}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': raw ? 'application/octet-stream' : 'application/json',
    },
    body: raw ? (body as string) : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 400) throw new Error(`${url}: HTTP ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** One follower: reads the SSE stream to its `end` event and returns the text and when the last line came. */
async function follow(base: string, taskId: number, last: string): Promise<{ text: string; lastAt: number }> {
  const res = await fetch(`${base}/api/v1/tasks/${taskId}/log?follow=1`);
  const decoder = new TextDecoder();
  let buf = '';
  let text = '';
  let lastAt = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const event = /^event: (.*)$/m.exec(ev)?.[1];
      const data = /^data: (.*)$/m.exec(ev)?.[1];
      if (event === 'log' && data) {
        text += (JSON.parse(data) as { text: string }).text;
        if (!lastAt && text.includes(last)) lastAt = performance.now();
      }
      if (event === 'end') return { text, lastAt };
    }
  }
  return { text, lastAt };
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-bench-web-'));
try {
  const file = path.join(dir, 'lenix.db');
  const { token, seconds } = await seedBuilds(file, BUILDS);
  const { server, base } = await startBenchServer(dir, file);
  try {
    const mid = Math.floor(BUILDS / 2);
    const pages: [string, string, string][] = [
      ['builds list, first page', '/builds', '/api/v1/builds'],
      [
        'builds list, filtered (source + state)',
        '/builds?source=pkg-7&state=queued',
        '/api/v1/builds?source=pkg-7&state=queued',
      ],
      ['builds list, NEVRA search', '/builds?q=pkg-7-1.10', '/api/v1/builds?source=pkg-7'],
      ['builds list, an older page', `/builds?before=${mid}`, `/api/v1/builds?before=${mid}`],
      ['a build page', `/builds/${mid}`, `/api/v1/builds/${mid}`],
    ];
    const rows: string[] = [];
    for (const [name, page, api] of pages) {
      await timeGets(base, page, 'text/html'); // warm-up
      const h = await timeGets(base, page, 'text/html');
      const j = await timeGets(base, api, 'application/json');
      rows.push(
        `| ${name} | ${h.p50.toFixed(1)} ms | ${h.p99.toFixed(1)} ms | ${j.p50.toFixed(1)} ms | ${j.p99.toFixed(1)} ms | ${(h.p99 / j.p99).toFixed(2)}× | ${Math.round(h.bytes / 1024)} KiB |`,
      );
    }

    // 500 followers of one running task; the agent writes LINES lines, one append each, then ends the task.
    const agentId = (
      await post(base, token, '/api/v1/agent/register', {
        name: 'bench-node',
        role: 'build',
        arches: ['x86_64', 'aarch64', 'src'],
      })
    ).agentId as number;
    // Baseline: the same appends on a task nobody follows.
    const quiet = await post(base, token, '/api/v1/agent/lease', { agentId, waitMs: 2000 });
    let quietOffset = 0;
    const q0 = performance.now();
    for (let i = 1; i <= LINES; i++) {
      const line = `line ${i} of the build log: ${'x'.repeat(60)}\n`;
      await post(
        base,
        token,
        `/api/v1/agent/leases/${quiet.lease.id}/log?fencingToken=${quiet.lease.fencingToken}&offset=${quietOffset}`,
        line,
        true,
      );
      quietOffset += Buffer.byteLength(line);
    }
    const quietSeconds = (performance.now() - q0) / 1000;
    const lease = await post(base, token, '/api/v1/agent/lease', { agentId, waitMs: 2000 });
    const taskId = lease.task.taskId as number;
    const lastLine = `line ${LINES} of the build log: done`;
    const followers = Array.from({ length: FOLLOWERS }, () => follow(base, taskId, lastLine));
    await new Promise((r) => setTimeout(r, 500)); // let the connections open before the first line
    let expected = '';
    let offset = 0;
    const t0 = performance.now();
    for (let i = 1; i <= LINES; i++) {
      const line = i === LINES ? `${lastLine}\n` : `line ${i} of the build log: ${'x'.repeat(60)}\n`;
      await post(
        base,
        token,
        `/api/v1/agent/leases/${lease.lease.id}/log?fencingToken=${lease.lease.fencingToken}&offset=${offset}`,
        line,
        true,
      );
      offset += Buffer.byteLength(line);
      expected += line;
    }
    const written = performance.now();
    await post(base, token, `/api/v1/agent/leases/${lease.lease.id}/complete`, {
      fencingToken: lease.lease.fencingToken,
      outcome: { kind: 'failure', code: 'BUILD_FAILED', reason: 'bench' },
    });
    const results = await Promise.all(followers);
    const complete = results.filter((r) => r.text === expected).length;
    const lags = results.map((r) => r.lastAt - written);

    console.log(
      `\nWeb interface (${os.cpus().length} cores, Node ${process.version}); ${BUILDS} builds seeded in ${seconds.toFixed(1)} s; ${REQUESTS} sequential requests per page over loopback\n`,
    );
    console.log('| page | HTML p50 | HTML p99 | JSON API p50 | JSON API p99 | HTML/JSON p99 | HTML size |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of rows) console.log(r);
    console.log(
      `\nLive log: ${FOLLOWERS} followers of one task; ${LINES} appends written in ${((written - t0) / 1000).toFixed(2)} s (${quietSeconds.toFixed(2)} s with no follower: ${((written - t0) / 1000 / quietSeconds).toFixed(1)}×)`,
    );
    console.log(`| followers with every line | last line reached all, after the last write: p50 | p99 | max |`);
    console.log(`| ---: | ---: | ---: | ---: |`);
    console.log(
      `| ${complete} / ${FOLLOWERS} | ${pct(lags, 0.5).toFixed(0)} ms | ${pct(lags, 0.99).toFixed(0)} ms | ${Math.max(...lags).toFixed(0)} ms |`,
    );
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
