import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { freePort, gitRepo, until } from './cli.js';
import type { System } from './system.js';

const run = promisify(execFile);
type Build = { id: number; state: string; tasks: { kind: string; state: string }[] };

/**
 * The origin's rsync module: Debian's rsync daemon on loopback, read-only, one module per entry (name → folder),
 * as docs/operations.md configures it.
 */
export async function startRsyncd(
  dir: string,
  modules: Record<string, string>,
): Promise<{ url: string; stop(): void }> {
  const port = await freePort();
  const conf = path.join(dir, 'rsyncd.conf');
  const lines = [`pid file = ${path.join(dir, 'rsyncd.pid')}`, 'use chroot = no'];
  for (const [name, folder] of Object.entries(modules))
    lines.push(`[${name}]`, `  path = ${folder}`, '  read only = yes', '  uid = nobody', '  gid = nogroup');
  await writeFile(conf, `${lines.join('\n')}\n`);
  const daemon: ChildProcess = spawn(
    'rsync',
    ['--daemon', '--no-detach', `--config=${conf}`, `--port=${port}`, '--address=127.0.0.1'],
    { stdio: 'ignore' },
  );
  const url = `rsync://127.0.0.1:${port}`;
  await until('the rsync daemon', async () => {
    const r = await run('rsync', [`${url}/`]).catch(() => null);
    return r !== null && Object.keys(modules).every((m) => new RegExp(`^${m}\\b`, 'm').test(r.stdout));
  });
  return { url, stop: () => daemon.kill() };
}

/** Wait until the repository's mirror tree shows its current snapshot, TIME file last (a publish comes first). */
export async function mirrorTreeCurrent(sys: System, dir: string, repo: string): Promise<number> {
  const tree = path.join(dir, 'server', 'repos', repo, 'mirror');
  return until(`the mirror tree of ${repo} at the current snapshot`, async () => {
    const { currentSnapshot } = await sys.api.json<{ currentSnapshot: number }>('GET', `/api/v1/repos/${repo}`);
    const shown = await readFile(path.join(tree, '.snapshot'), 'utf8').catch(() => '');
    const time = await readFile(path.join(tree, 'TIME'), 'utf8').catch(() => '');
    return shown.trim() === String(currentSnapshot) &&
      time === (await (await fetch(`${sys.url}/repos/${repo}/TIME`)).text())
      ? currentSnapshot
      : null;
  });
}

/** Build the source (created on first use from a one-spec git repository) and wait until its test passed. */
export async function buildTested(sys: System, dir: string, source: string, spec: string, version: string) {
  const repo = path.join(dir, 'repos', source);
  const first = await readFile(path.join(repo, `${source}.spec`)).then(
    () => false,
    () => true,
  );
  await gitRepo(repo, { [`${source}.spec`]: spec }, version);
  if (first) await sys.cli('source', 'add', source, repo);
  const { id } = JSON.parse((await sys.cli('build', source, '--json')).stdout) as { id: number };
  await until(
    `build ${id} tested`,
    async () => {
      const b = await sys.api.json<Build>('GET', `/api/v1/builds/${id}`);
      return b.tasks.some((t) => t.kind === 'test' && t.state === 'succeeded') ? b : null;
    },
    300_000,
  );
  return id;
}

/** Release a tested build into a repository and wait until it is published. */
export async function releaseBuild(sys: System, id: number, repo: string): Promise<void> {
  const r = JSON.parse(
    (await sys.cli('release', String(id), '--to', repo, '--approve', '--wait', '--json')).stdout,
  ) as {
    state: string;
  };
  assert.equal(r.state, 'published');
}

/**
 * A mirror's copy is whole: every file its repomd.xml names is there with that sha256, and every package
 * primary.xml names is there with its checksum. Returns the package file names.
 */
export async function assertWholeTree(archDir: string): Promise<string[]> {
  const repomd = await readFile(path.join(archDir, 'repodata', 'repomd.xml'), 'utf8');
  const sha = async (f: string) =>
    createHash('sha256')
      .update(await readFile(f))
      .digest('hex');
  let primary = '';
  for (const m of repomd.matchAll(/<data type="([^"]+)">([\s\S]*?)<\/data>/g)) {
    const sum = /<checksum type="sha256">([0-9a-f]{64})<\/checksum>/.exec(m[2]!)?.[1];
    const href = /<location href="([^"]+)"/.exec(m[2]!)?.[1];
    assert.ok(sum && href, `repomd.xml names ${m[1]} without a checksum or a location`);
    const file = path.join(archDir, href);
    assert.equal(await sha(file).catch(() => 'missing'), sum, `${href}, named by repomd.xml`);
    if (m[1] === 'primary') primary = gunzipSync(await readFile(file)).toString('utf8');
  }
  const names: string[] = [];
  for (const m of primary.matchAll(/<package type="rpm">([\s\S]*?)<\/package>/g)) {
    const sum = /<checksum type="sha256" pkgid="YES">([0-9a-f]{64})<\/checksum>/.exec(m[1]!)?.[1];
    const href = /<location href="([^"]+)"/.exec(m[1]!)?.[1];
    assert.ok(sum && href, 'a package without a checksum or a location');
    assert.equal(await sha(path.join(archDir, href)).catch(() => 'missing'), sum, `${href}, named by primary.xml`);
    names.push(path.basename(href));
  }
  return names.sort();
}
