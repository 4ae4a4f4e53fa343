import { HeadObjectCommand } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { mkdtemp } from 'node:fs/promises';
import { startRadosgw, type TestS3 } from './support/ceph.js';
import { DnfClient } from './support/dnf.js';
import { freePort, gitRepo, Proc, specWith, until } from './support/cli.js';
import { type System, startSystem } from './support/system.js';

type Task = { kind: string; state: string; artifacts: { sha256: string; kind: string }[] };
type Build = { id: number; state: string; tasks: Task[] };

/**
 * Artifacts in S3 (issue 16): a whole system whose server keeps every blob in Ceph radosgw builds, signs,
 * tests and publishes a package; then a second server process — its own data folder, no local copy of
 * anything, the same database and bucket — serves the published repository to dnf (gpgcheck=1,
 * repo_gpgcheck=1) from the bucket alone.
 */
describe('artifacts and published metadata in S3', { timeout: 600_000 }, () => {
  let dir: string;
  let s3: TestS3;
  let sys: System;
  let second: Proc | null = null;
  const bucket = 'lenix-e2e';
  const blobs = () => `s3://${bucket}/site-a?endpoint=${s3.endpoint}`;
  const keys = () => ({ LENIX_S3_ACCESS_KEY_ID: s3.accessKeyId, LENIX_S3_SECRET_ACCESS_KEY: s3.secretAccessKey });

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-s3-e2e-'));
    s3 = await startRadosgw();
    sys = await startSystem(dir, { serverArgs: ['--blobs', blobs()], serverEnv: keys() });
  });

  after(async () => {
    await second?.stop('SIGTERM');
    await sys?.stop();
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a package built and published with blobs in S3 is served by a server that holds no file of it', async () => {
    await sys.cli('repo', 'create', 'shared', '--arch', 'x86_64');
    await gitRepo(path.join(dir, 'repos', 'hello-s3'), { 'hello-s3.spec': specWith('hello-s3', 'echo build') });
    await sys.cli('source', 'add', 'hello-s3', path.join(dir, 'repos', 'hello-s3'));
    const { id } = JSON.parse((await sys.cli('build', 'hello-s3', '--json')).stdout) as { id: number };
    const built = await until(`build ${id} built, signed and tested`, async () => {
      const b = await sys.api.json<Build>('GET', `/api/v1/builds/${id}`);
      if (b.state === 'failed') throw new Error(`build failed: ${JSON.stringify(b)}`);
      return b.tasks.some((t) => t.kind === 'test' && t.state === 'succeeded') ? b : null;
    });
    assert.equal(built.state, 'succeeded');
    const released = JSON.parse(
      (await sys.cli('release', String(id), '--to', 'shared', '--approve', '--wait', '--json')).stdout,
    ) as { state: string };
    assert.equal(released.state, 'published');

    // Every artifact is an object in the bucket, under its digest; the server's data folder holds no blob store.
    const artifacts = built.tasks.flatMap((t) => t.artifacts);
    assert.ok(artifacts.some((a) => a.kind === 'signed-rpm'));
    const raw = s3.client();
    try {
      for (const a of artifacts) {
        const head = await raw.send(
          new HeadObjectCommand({ Bucket: bucket, Key: `site-a/sha256/${a.sha256.slice(0, 2)}/${a.sha256}` }),
        );
        assert.ok((head.ContentLength ?? 0) > 0, `${a.kind} ${a.sha256} is in the bucket`);
      }
    } finally {
      raw.destroy();
    }
    assert.ok(!(await readdir(path.join(dir, 'server'))).includes('blobs'));

    // A second server: same database, same bucket, an empty data folder of its own.
    const port = await freePort();
    second = new Proc(
      [
        'server',
        '--data',
        path.join(dir, 'server-b'),
        '--database',
        path.join(dir, 'server', 'lenix.db'),
        '--blobs',
        blobs(),
        '--port',
        String(port),
      ],
      keys(),
    );
    const urlB = (await second.waitFor(/listening on (http:\S+)/))[1]!;
    const reposDir = path.join(dir, 'client', 'repos.d');
    await mkdir(reposDir, { recursive: true });
    const repoFile = await (await fetch(`${urlB}/repos/shared.repo`)).text();
    assert.match(repoFile, new RegExp(`metalink=${urlB}/metalink\\?repo=shared&`));
    await writeFile(path.join(reposDir, 'shared.repo'), repoFile);
    const c = new DnfClient(path.join(dir, 'client'), reposDir);
    await c.base(path.join(dir, 'tester-work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm'));
    const installed = await c.dnf('install hello-s3');
    assert.equal(installed.code, 0, installed.out);
    assert.match((await c.sh('rpm --root "$ROOT" -q hello-s3')).out, /^hello-s3-1\.0-1\.noarch/m);
    // It had nothing of its own to serve that from.
    assert.deepEqual(
      (await readdir(path.join(dir, 'server-b'))).filter((n) => n === 'repos' || n === 'blobs'),
      [],
    );
    // Without the object store the server is alive but not ready: a load balancer sends clients elsewhere.
    assert.equal((await fetch(`${urlB}/api/v1/ready`)).status, 200);
    await s3.stop();
    const down = await fetch(`${urlB}/api/v1/ready`);
    assert.equal(down.status, 503);
    assert.equal(((await down.json()) as { code: string }).code, 'UNAVAILABLE');
    assert.equal((await fetch(`${urlB}/api/v1/health`)).status, 200);
  });
});
