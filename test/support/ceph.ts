import { S3Client } from '@aws-sdk/client-s3';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './cli.js';

const run = promisify(execFile);

/**
 * A throwaway S3 service for tests: Ceph's radosgw in front of a one-host RADOS cluster (one monitor, one
 * memstore OSD, no manager, no authentication inside the cluster), all on 127.0.0.1 ports chosen at random,
 * from Debian's own packages (../shared/research/feasibility.md §2a). A real S3 gateway, so write-once
 * (`If-None-Match: *`), multipart uploads and range reads behave as they do in production. Needs root (the
 * daemons' data and sockets) — CI runs as root.
 */
export interface TestS3 {
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** A plain S3 client of the service, for a test to look (or write) behind the blob store's back. */
  client(): S3Client;
  stop(): Promise<void>;
}

export function cephAvailable(): Promise<boolean> {
  return run('sh', ['-c', 'command -v radosgw && command -v ceph-mon && command -v ceph-osd']).then(
    () => process.getuid?.() === 0,
    () => false,
  );
}

/** Poll `check` (a command that fails until the condition holds), failing with `what` after `ms`. */
async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`ceph: ${what} not ready after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250)); // polling a daemon that has no readiness signal
  }
}

export async function startRadosgw(): Promise<TestS3> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-ceph-'));
  const [v2, v1, rgwPort] = [await freePort(), await freePort(), await freePort()];
  const fsid = randomUUID();
  const conf = path.join(dir, 'ceph.conf');
  const daemons: ChildProcess[] = [];
  for (const d of ['run', 'log', 'mon/a', 'osd/0', 'rgw']) await mkdir(path.join(dir, d), { recursive: true });
  await writeFile(
    conf,
    `[global]
fsid = ${fsid}
mon_host = [v2:127.0.0.1:${v2},v1:127.0.0.1:${v1}]
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# radosgw asks for msgr2 "secure" mode, which needs cephx; crc mode works without it
ms_mon_client_mode = crc
ms_client_mode = crc
ms_mon_cluster_mode = crc
ms_cluster_mode = crc
ms_mon_service_mode = crc
ms_service_mode = crc
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
osd_crush_chooseleaf_type = 0
run_dir = ${dir}/run
admin_socket = ${dir}/run/$name.asok
log_file = ${dir}/log/$name.log
pid_file = ${dir}/run/$name.pid
[mon.a]
mon_data = ${dir}/mon/a
[osd.0]
osd_objectstore = memstore
osd_data = ${dir}/osd/0
memstore_device_bytes = 1073741824
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw_data = ${dir}/rgw
`,
  );
  const ceph = (...args: string[]) => run('ceph', ['-c', conf, '--connect-timeout', '10', ...args]);
  const daemon = (cmd: string, args: string[]) => {
    const p = spawn(cmd, ['-f', '-c', conf, ...args], { stdio: 'ignore' });
    daemons.push(p);
    return p;
  };
  const stop = async () => {
    for (const p of daemons.reverse()) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const exited = once(p, 'exit');
      p.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await run('monmaptool', [
      '--create',
      '--addv',
      'a',
      `[v2:127.0.0.1:${v2},v1:127.0.0.1:${v1}]`,
      '--fsid',
      fsid,
      path.join(dir, 'monmap'),
    ]);
    const keyring = path.join(dir, 'mon.keyring');
    await run('ceph-authtool', ['--create-keyring', keyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    await run('ceph-mon', [
      '-c',
      conf,
      '--mkfs',
      '-i',
      'a',
      '--monmap',
      path.join(dir, 'monmap'),
      '--keyring',
      keyring,
    ]);
    daemon('ceph-mon', ['-i', 'a']);
    await until('the monitor', 60_000, async () => (await ceph('mon', 'stat')).stdout.includes('quorum'));
    const uuid = randomUUID();
    const id = (await ceph('osd', 'new', uuid)).stdout.trim();
    await run('ceph-osd', ['-c', conf, '-i', id, '--mkfs', '--osd-uuid', uuid]);
    daemon('ceph-osd', ['-i', id]);
    await until('the OSD', 60_000, async () => /1 up/.test((await ceph('osd', 'stat')).stdout));
    const accessKeyId = `LENIX${randomBytes(8).toString('hex').toUpperCase()}`;
    const secretAccessKey = randomBytes(24).toString('base64url');
    daemon('radosgw', ['-n', 'client.rgw.a']);
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await until('radosgw', 90_000, async () => (await fetch(endpoint)).ok);
    await run('radosgw-admin', [
      '-c',
      conf,
      'user',
      'create',
      '--uid=lenix',
      '--display-name=Lenix tests',
      `--access-key=${accessKeyId}`,
      `--secret-key=${secretAccessKey}`,
    ]);
    const client = () =>
      new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId, secretAccessKey },
      });
    return { endpoint, accessKeyId, secretAccessKey, client, stop };
  } catch (err) {
    const logs = await readFile(path.join(dir, 'log', 'client.rgw.a.log'), 'utf8').catch(() => '');
    await stop();
    throw new Error(`${(err as Error).message}\n${logs.slice(-2000)}`, { cause: err });
  }
}
