import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ApiClient } from '../src/client/http.js';
import { signNote, type NoteSigner } from '../src/ledger/note.js';
import { readSse } from '../src/cli/follow.js';
import { Proc, freePort, gitRepo, lenix, specWith } from './support/cli.js';
import { DnfClient } from './support/dnf.js';
import { accessibility, launchBrowser, screenshotDir } from './support/browser.js';
import { cyclonedxJsonErrors, cyclonedxXmlErrors, parseSpdxTagValue, spdxJsonErrors } from './support/schemas.js';
import { parseRpmPurl } from '../src/attest/sbom.js';
import { mkdir, writeFile } from 'node:fs/promises';

const run = promisify(execFile);

/** Re-sign a note's text with another key (a forged checkpoint). */
function resign(signer: NoteSigner, note: string): string {
  const text = note.slice(0, note.lastIndexOf('\n\n') + 1);
  return signNote(text, [signer]);
}

/**
 * End to end through the real CLI: `lenix up` (server + local build node as child processes), real git,
 * rpmbuild in bubblewrap, and rpm reading what comes out.
 */
describe('lenix up, end to end', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let up: Proc;
  let url: string;
  let api: ApiClient;

  const cli = (...args: string[]) => lenix(args, env);
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await cli(...args, '--json');
    assert.equal(r.code, 0, `lenix ${args.join(' ')} failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  type Build = {
    id: number;
    state: string;
    commit: string;
    reason: string | null;
    reasonCode: string | null;
    tasks: {
      id: number;
      kind: string;
      arch: string;
      state: string;
      attempts: number;
      artifacts: { name: string; sha256: string; size: number; kind: string; nevra: string }[];
    }[];
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-e2e-'));
    env = { LENIX_CONFIG: path.join(dir, 'config.json'), LENIX_SERVER: '', LENIX_TOKEN: '' };
    delete env['LENIX_SERVER'];
    delete env['LENIX_TOKEN'];
    const port = await freePort();
    up = new Proc(
      ['up', '--data', path.join(dir, 'data'), '--port', String(port), '--local-source-root', path.join(dir, 'repos')],
      env,
    );
    url = (await up.waitFor(/ready: (http:\S+)/))[1]!;
    const token = (await readFile(path.join(dir, 'data', 'admin.token'), 'utf8')).trim();
    api = new ApiClient(url, token);
  });

  after(async () => {
    await up?.stop('SIGINT');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('lenix up builds the three samples and writes the admin token and CLI config', async () => {
    assert.match(up.out, /build \d+ lenix-hello-data-1\.0-1: succeeded; sign succeeded, test succeeded/);
    assert.match(
      up.out,
      /release \d+ into lenix: published, with advisory LXSA-\d{4}:\d{4} \(security, Moderate\) for lenix-hello-data-1\.1-1/,
    );
    assert.match(up.out, /build \d+ hello-c-1\.2-1: succeeded; sign succeeded, test succeeded/);
    assert.match(
      up.out,
      /build \d+ lenix-multi-2\.0-1: succeeded; sign succeeded, test succeeded .*lenix-multi-config-2\.0-1\.noarch\.rpm/,
    );
    assert.match(up.out, /release \d+ into lenix: published/);
    const st = await stat(path.join(dir, 'data', 'admin.token'));
    assert.equal(st.mode & 0o077, 0, 'admin token is private');
    const cfg = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));
    assert.equal(cfg.server, url);
    const sources = await json<{ name: string }[]>('source', 'list');
    assert.deepEqual(sources.map((s) => s.name).sort(), ['hello-c', 'lenix-hello-data', 'lenix-multi']);
  });

  test('real dnf installs the published samples with gpgcheck=1 and repo_gpgcheck=1 from the .repo file over HTTP', async () => {
    const repoFile = await (await fetch(`${url}/repos/lenix.repo`)).text();
    assert.match(repoFile, /^gpgcheck=1$/m);
    assert.match(repoFile, /^repo_gpgcheck=1$/m);
    const reposDir = path.join(dir, 'client', 'repos.d');
    await mkdir(reposDir, { recursive: true });
    await writeFile(path.join(reposDir, 'lenix.repo'), repoFile);
    const client = new DnfClient(path.join(dir, 'client', 'one'), reposDir);
    await client.base(path.join(dir, 'data', 'tester', 'work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm'));
    const r = await client.dnf('install lenix-hello-data hello-c lenix-multi');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /Importing GPG key|Key imported successfully|imported/i);
    for (const n of [
      'lenix-hello-data-1.1-1.noarch',
      'hello-c-1.2-1.x86_64',
      'lenix-multi-2.0-1.noarch',
      'lenix-multi-config-2.0-1.noarch',
    ])
      assert.match(r.out, new RegExp(n.replace(/\./g, '\\.')));
    const hello = await client.sh('chroot "$ROOT" /usr/bin/hello-c && cat "$ROOT/var/lib/lenix-multi/post-ran"');
    assert.equal(hello.code, 0, hello.out);
    assert.match(hello.out, /Hello from hello-c/);
    assert.match(hello.out, /^configured \d{4}$/m, 'the %post scriptlet ran');
    // The sample advisory lenix up released with lenix-hello-data 1.1 is in the repository's updateinfo.
    const advisories = await client.dnf('updateinfo list --security --installed');
    assert.equal(advisories.code, 0, advisories.out);
    assert.match(advisories.out, /^LXSA-\d{4}:\d{4} +Moderate\/Sec\. +lenix-hello-data-1\.1-1\.noarch$/m);

    // rpmkeys -K with the public key the repository names.
    const keyUrl = /^gpgkey=(\S+)$/m.exec(repoFile)![1]!;
    const db = path.join(dir, 'client', 'rpmdb');
    await writeFile(path.join(dir, 'client', 'key.asc'), await (await fetch(keyUrl)).text());
    await run('rpmkeys', ['--dbpath', db, '--import', path.join(dir, 'client', 'key.asc')]);
    const pkg = path.join(dir, 'client', 'hello-c.rpm');
    await api.download('/repos/lenix/x86_64/Packages/hello-c-1.2-1.x86_64.rpm', pkg);
    const { stdout } = await run('rpmkeys', ['--dbpath', db, '-K', pkg]);
    assert.match(stdout, /digests signatures OK/);
  });

  test('lenix verify proves the chain of each published RPM, online and from its proof bundle alone; tampering is named', async () => {
    const logKey = (await (await fetch(`${url}/ledger/key`)).text()).trim();
    assert.match(up.out, new RegExp(`ledger key .*: ${logKey.replace(/[+/]/g, '\\$&')}`));
    const [, logPqKey] = (await (await fetch(`${url}/ledger/keys`)).text()).trim().split('\n');
    const witnessKey = /witness \S+, key \(lenix verify --witness-key KEY\): (\S+)/.exec(up.out)?.[1] ?? '';
    assert.match(witnessKey, /^lenix\.local\/witness\+[0-9a-f]{8}\+/);
    assert.equal(Buffer.from(witnessKey.split('+')[2]!, 'base64')[0], 0x04, 'an Ed25519 cosignature key (type 0x04)');
    const pkgs = [
      'hello-c-1.2-1.x86_64.rpm',
      'lenix-hello-data-1.1-1.noarch.rpm',
      'lenix-multi-2.0-1.noarch.rpm',
      'lenix-multi-config-2.0-1.noarch.rpm',
    ];
    for (const name of pkgs) {
      const file = path.join(dir, 'verify', name);
      await mkdir(path.dirname(file), { recursive: true });
      await api.download(`/repos/lenix/x86_64/Packages/${name}`, file);
      await api.download(`/repos/lenix/x86_64/Packages/${name}.proof`, `${file}.proof`);
      const online = await cli('verify', file, '--log-key', logKey);
      assert.equal(online.code, 0, online.stderr);
      for (const stage of ['source', 'build', 'sign', 'test', 'release'])
        assert.match(online.stdout, new RegExp(`^  ${stage} +entry \\d+`, 'm'), `${name}: ${stage}`);
      const pqKey = path.join(dir, 'verify', 'mldsa65.pub');
      await writeFile(pqKey, await (await fetch(`${url}/ledger/mldsa65.pub`)).text());
      const pq = await cli('verify', file, '--log-key', logKey, '--pq-key', pqKey);
      assert.equal(pq.code, 0, `ML-DSA-65 signatures: ${pq.stderr}`);
      // The strictest pinning: the log's Ed25519 and ML-DSA-44 checkpoint keys, and the witness lenix up runs.
      const strict = await lenix(
        [
          'verify',
          file,
          '--bundle',
          `${file}.proof`,
          '--log-key',
          logKey,
          '--log-key',
          logPqKey!,
          '--witness-key',
          witnessKey,
        ],
        { ...env, LENIX_SERVER: 'http://127.0.0.1:9' },
      );
      assert.equal(strict.code, 0, `log ML-DSA-44 and witness cosignatures: ${strict.stderr}`);
      const offline = await lenix(['verify', file, '--bundle', `${file}.proof`, '--log-key', logKey], {
        ...env,
        LENIX_SERVER: 'http://127.0.0.1:9',
      });
      assert.equal(offline.code, 0, offline.stderr);
      assert.equal(offline.stdout, online.stdout);
    }
    const file = path.join(dir, 'verify', pkgs[0]!);
    const bundle = JSON.parse(await readFile(`${file}.proof`, 'utf8')) as {
      checkpoint: string;
      entries: { index: number; entry: string; proof: string[] }[];
    };
    const tampered = async (what: string, change: (b: typeof bundle) => void, rpm = file) => {
      const b = JSON.parse(JSON.stringify(bundle)) as typeof bundle;
      change(b);
      const f = path.join(dir, 'verify', `${what}.proof`);
      await writeFile(f, JSON.stringify(b));
      const r = await cli('verify', rpm, '--bundle', f, '--log-key', logKey);
      assert.notEqual(r.code, 0, `${what} must fail`);
      return r.stderr;
    };
    // One byte of a stored statement.
    assert.match(
      await tampered('statement', (b) => {
        const raw = Buffer.from(b.entries[1]!.entry, 'base64');
        raw.writeUInt8(raw.readUInt8(raw.length - 5) ^ 1, raw.length - 5);
        b.entries[1]!.entry = raw.toString('base64');
      }),
      new RegExp(`entry ${bundle.entries[1]!.index}: not included`),
    );
    // One byte of a stored tree hash (a proof hash).
    assert.match(
      await tampered('hash', (b) => {
        const p = b.entries[0]!.proof;
        p[0] = (p[0]![0] === 'a' ? 'b' : 'a') + p[0]!.slice(1);
      }),
      /not included/,
    );
    // A deleted entry: the chain loses its sign link.
    assert.match(
      await tampered('deleted', (b) => {
        const predicateType = (e: { entry: string }) =>
          JSON.parse(Buffer.from(JSON.parse(Buffer.from(e.entry, 'base64').toString()).payload, 'base64').toString())
            .predicateType;
        b.entries = b.entries.filter((e) => predicateType(e) !== 'https://lenix.dev/attestation/sign/v1');
      }),
      /^lenix: SIGNATURE_INVALID: (sign|build): no/m,
    );
    // A checkpoint signed by another key.
    const forged = (await import('../src/ledger/note.js')).ed25519Signer(
      'lenix.local/ledger',
      new Uint8Array(32).fill(9),
    );
    assert.match(
      await tampered('other-key', (b) => {
        b.checkpoint = resign(forged, b.checkpoint);
      }),
      /checkpoint: /,
    );
    // A witness key the checkpoint has no cosignature from.
    const { ed25519Cosigner } = await import('../src/ledger/note.js');
    const stranger = ed25519Cosigner('lenix.local/witness', new Uint8Array(32).fill(3), Date.now).verifierKey;
    const unwitnessed = await cli(
      'verify',
      file,
      '--bundle',
      `${file}.proof`,
      '--log-key',
      logKey,
      '--witness-key',
      stranger,
    );
    assert.notEqual(unwitnessed.code, 0);
    assert.match(unwitnessed.stderr, /witness: no signature by lenix\.local\/witness/);
    // A client that verified a checkpoint of another history (a fork), or of a longer tree (a rollback), is told.
    const stateFile = path.join(dir, 'ledger-state.json');
    const remembered = JSON.parse(await readFile(stateFile, 'utf8')) as Record<string, { size: number; root: string }>;
    assert.ok(remembered[logKey]!.size > 3, 'verify remembered the checkpoint it checked');
    await writeFile(stateFile, JSON.stringify({ [logKey]: { size: 3, root: 'ab'.repeat(32) } }));
    const fork = await cli('verify', file, '--log-key', logKey);
    assert.notEqual(fork.code, 0);
    assert.match(fork.stderr, /checkpoint: not consistent with the checkpoint of size 3/);
    await writeFile(stateFile, JSON.stringify({ [logKey]: { size: 1_000_000, root: 'ab'.repeat(32) } }));
    assert.match(
      (await cli('verify', file, '--log-key', logKey)).stderr,
      /fewer than the 1000000 seen before \(rolled back\)/,
    );
    await writeFile(stateFile, JSON.stringify(remembered));
    // The RPM itself changed: its digest is in no statement.
    const changed = path.join(dir, 'verify', 'changed.rpm');
    const bytes = await readFile(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 10) ^ 1, bytes.length - 10);
    await writeFile(changed, bytes);
    assert.match(await tampered('rpm', () => undefined, changed), /no (sign|build) statement/);
  });

  test('SBOMs: the snapshot SBOM names every served RPM by its sha256, all formats validate, bytes repeat, verify --sbom checks them', async () => {
    const repo = (await (await fetch(`${url}/api/v1/repos/lenix`)).json()) as {
      currentSnapshot: number;
      arches: string[];
      snapshots: { id: number; packages: { name: string; arch: string; sha256: string }[] }[];
    };
    const snap = repo.snapshots.find((s) => s.id === repo.currentSnapshot)!;
    const served = new Map<string, { file: string; sha256: string }>();
    for (const p of snap.packages) {
      const file = path.join(dir, 'sbom', 'pkgs', p.name);
      await mkdir(path.dirname(file), { recursive: true });
      const sha = await api.download(`/repos/lenix/${repo.arches[0]}/Packages/${p.name}`, file);
      served.set(sha, { file, sha256: sha });
    }
    assert.equal(served.size, 4);
    const get = async (u: string) => {
      const r = await fetch(`${url}${u}`);
      assert.equal(r.status, 200, `${u}: ${r.status}`);
      return { text: await r.text(), sha: r.headers.get('x-lenix-sbom-sha256')!, type: r.headers.get('content-type')! };
    };
    const formats = ['cyclonedx-json', 'cyclonedx-xml', 'spdx-json', 'spdx-tag-value'] as const;
    const docs: Record<string, string> = {};
    for (const f of formats) {
      const one = await get(`/api/v1/repos/lenix/snapshots/current/sbom?format=${f}`);
      const two = await get(`/api/v1/repos/lenix/snapshots/${snap.id}/sbom?format=${f}`);
      assert.equal(two.text, one.text, `${f}: generating twice gives the same bytes`);
      assert.equal(createHash('sha256').update(one.text).digest('hex'), one.sha);
      docs[f] = one.text;
    }
    assert.equal(await cyclonedxJsonErrors(docs['cyclonedx-json']!), null);
    assert.equal(cyclonedxXmlErrors(docs['cyclonedx-xml']!), null);
    assert.equal(spdxJsonErrors(JSON.parse(docs['spdx-json']!)), null);
    assert.equal(spdxJsonErrors(parseSpdxTagValue(docs['spdx-tag-value']!)), null);
    // Every served RPM is a component with the sha256 of the file as served; its purl parses back to what
    // rpm itself reads from the file.
    const bom = JSON.parse(docs['cyclonedx-json']!) as {
      components: { hashes: { alg: string; content: string }[]; purl: string }[];
    };
    assert.equal(bom.components.length, served.size);
    for (const { file, sha256 } of served.values()) {
      const c = bom.components.find((x) => x.hashes.some((h) => h.alg === 'SHA-256' && h.content === sha256));
      assert.ok(c, `${path.basename(file)} (${sha256}) is in the snapshot SBOM`);
      const { stdout } = await run('rpm', ['-qp', '--qf', '%{NAME}|%{VERSION}|%{RELEASE}|%{EPOCH}|%{ARCH}', file]);
      const [name, version, release, epoch, arch] = stdout.split('|');
      const back = parseRpmPurl(c.purl);
      assert.deepEqual(
        [back.name, back.version, back.release, back.epoch === null ? '(none)' : String(back.epoch), back.arch],
        [name, version, release, epoch, arch],
      );
    }
    const spdx = JSON.parse(docs['spdx-json']!) as { packages: { checksums?: { checksumValue: string }[] }[] };
    for (const sha of served.keys())
      assert.ok(
        spdx.packages.some((p) => p.checksums?.some((c) => c.checksumValue === sha)),
        `SPDX lists ${sha}`,
      );

    // A build's SBOM in every format, through the CLI too.
    const builds = await json<{ id: number; package: string; state: string }[]>('builds');
    const hello = builds.find((b) => b.package === 'hello-c' && b.state === 'succeeded')!;
    for (const f of formats) {
      const out = path.join(dir, 'sbom', `build.${f}`);
      const r = await cli('sbom', `build:${hello.id}`, '--format', f, '--output', out);
      assert.equal(r.code, 0, r.stderr);
      const text = await readFile(out, 'utf8');
      if (f === 'cyclonedx-json') {
        assert.equal(await cyclonedxJsonErrors(text), null);
        const b = JSON.parse(text) as {
          components: { name: string }[];
          formulation: { components: unknown[]; workflows: { tasks: { name: string }[] }[] }[];
        };
        assert.ok(b.formulation[0]!.components.length > 5, 'the buildroot is in the formulation');
        assert.deepEqual(b.formulation[0]!.workflows[0]!.tasks.map((t) => t.name).slice(0, 2), [
          'srpm',
          `build ${os.arch() === 'x64' ? 'x86_64' : os.arch()}`,
        ]);
      }
      if (f === 'cyclonedx-xml') assert.equal(cyclonedxXmlErrors(text), null);
      if (f === 'spdx-json') assert.equal(spdxJsonErrors(JSON.parse(text)), null);
      if (f === 'spdx-tag-value') assert.equal(spdxJsonErrors(parseSpdxTagValue(text)), null);
    }

    // verify --sbom: the served document is in the ledger; one edited field is not.
    const logKey = (await (await fetch(`${url}/ledger/key`)).text()).trim();
    const sbomFile = path.join(dir, 'sbom', 'snapshot.cdx.json');
    await writeFile(sbomFile, docs['cyclonedx-json']!);
    const ok = await cli('verify', '--sbom', sbomFile, '--log-key', logKey);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /sbom +entry \d+ +cyclonedx-json SBOM of snapshot:lenix:/);
    const edited = path.join(dir, 'sbom', 'edited.cdx.json');
    await writeFile(edited, docs['cyclonedx-json']!.replace(/"version": "1\.2-1"/, '"version": "1.2-2"'));
    assert.notEqual(await readFile(edited, 'utf8'), docs['cyclonedx-json']);
    const bad = await cli('verify', '--sbom', edited, '--log-key', logKey);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /sbom: no sbom statement/);
  });

  test('lenix build on the C sample gives an SRPM and an x86_64 RPM whose bytes match the record', async () => {
    const b = await json<Build>('build', 'hello-c', '--wait');
    assert.equal(b.state, 'succeeded');
    const files = b.tasks.flatMap((t) => t.artifacts).filter((a) => a.kind === 'srpm' || a.kind === 'rpm');
    const srpm = files.find((a) => a.kind === 'srpm');
    const rpm = files.find((a) => a.kind === 'rpm');
    assert.equal(srpm?.name, 'hello-c-1.2-1.src.rpm');
    assert.equal(rpm?.name, `hello-c-1.2-1.${os.arch() === 'x64' ? 'x86_64' : os.arch()}.rpm`);
    const shown = await json<Build>('build', 'show', String(b.id));
    const shownFiles = shown.tasks.flatMap((t) => t.artifacts).filter((a) => a.kind === 'srpm' || a.kind === 'rpm');
    assert.deepEqual(
      shownFiles.map((a) => a.sha256),
      files.map((a) => a.sha256),
    );
    for (const a of [srpm!, rpm!]) {
      const file = path.join(dir, a.name);
      const got = await api.download(`/api/v1/artifacts/${a.sha256}`, file);
      assert.equal(got, a.sha256);
      assert.equal(
        createHash('sha256')
          .update(await readFile(file))
          .digest('hex'),
        a.sha256,
      );
      assert.equal((await stat(file)).size, a.size);
    }
    const { stdout } = await run('rpm', [
      '-qp',
      '--qf',
      '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}',
      path.join(dir, rpm!.name),
    ]);
    assert.equal(stdout, rpm!.name.replace(/\.rpm$/, ''));
    const { stdout: files2 } = await run('rpm', ['-qlp', path.join(dir, rpm!.name)]);
    assert.match(files2, /\/usr\/bin\/hello-c/);
    const { stdout: host } = await run('rpm', ['-qp', '--qf', '%{BUILDHOST}', path.join(dir, rpm!.name)]);
    assert.equal(host, 'lenix-build');
  });

  test('the same commit of the noarch sample built twice gives byte-identical RPMs', async () => {
    const one = await json<Build>('build', 'lenix-hello-data', '--wait');
    const two = await json<Build>('build', 'lenix-hello-data', '--wait');
    assert.equal(one.commit, two.commit);
    // The built packages (signatures, added later by the signer, carry their own time and are not compared).
    const digests = (b: Build) =>
      b.tasks
        .flatMap((t) =>
          t.artifacts.filter((a) => a.kind === 'srpm' || a.kind === 'rpm').map((a) => `${a.name} ${a.sha256}`),
        )
        .sort();
    assert.deepEqual(digests(one), digests(two));
    assert.equal(digests(one).length, 2);
  });

  test('the build records the buildroot: rpm, compiler and host OS', async () => {
    const builds = await json<{ id: number }[]>('builds', '--source', 'hello-c', '--limit', '1');
    const b = await api.json<{
      tasks: { buildroot: { tools: Record<string, string>; hostOs: string; packages: unknown[] } }[];
    }>('GET', `/api/v1/builds/${builds[0]!.id}`);
    const br = b.tasks[1]!.buildroot;
    assert.match(br.tools['rpmbuild']!, /RPM version/);
    assert.match(br.tools['gcc']!, /gcc/);
    assert.ok(br.hostOs.length > 0);
    assert.ok(br.packages.length > 0);
  });

  test('a line printed by %build is readable through the follow endpoint before the task completes', async () => {
    const repo = path.join(dir, 'repos', 'slow');
    await gitRepo(repo, { 'slow.spec': specWith('slow', 'echo "LENIX-MARKER-BUILD-LINE"\nsleep 300') });
    assert.equal((await cli('source', 'add', 'slow', repo)).code, 0);
    const b = await json<Build>('build', 'slow');
    // Wait for the binary task to exist, then follow its log.
    let binary: Build['tasks'][number] | undefined;
    for (let i = 0; i < 400 && !binary; i++) {
      const cur = await api.json<Build>('GET', `/api/v1/builds/${b.id}`);
      binary = cur.tasks.find((t) => t.kind === 'binary');
      if (!binary) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(binary, 'binary task appeared');
    const res = await api.request('GET', `/api/v1/tasks/${binary.id}/log?follow=1`);
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    let text = '';
    for await (const ev of readSse(res.body!)) {
      assert.equal(ev.event, 'log', 'the stream must not end before the marker');
      text += (JSON.parse(ev.data) as { text: string }).text;
      if (text.includes('LENIX-MARKER-BUILD-LINE')) break;
    }
    const task = await api.json<{ state: string }>('GET', `/api/v1/tasks/${binary.id}`);
    assert.equal(task.state, 'leased', 'the task is still running when the line arrives');
    // Cancel: the sandbox's whole process tree is killed.
    const cancelled = await cli('build', 'cancel', String(b.id));
    assert.equal(cancelled.code, 0, cancelled.stderr);
    const end = await api.request('GET', `/api/v1/tasks/${binary.id}/log?follow=1&offset=0`);
    let ended = '';
    for await (const ev of readSse(end.body!)) if (ev.event === 'end') ended = JSON.parse(ev.data).state;
    assert.equal(ended, 'cancelled');
    for (let i = 0; i < 200; i++) {
      const { stdout } = await run('pgrep', ['-f', 'sleep 300']).catch(() => ({ stdout: '' }));
      if (stdout.trim() === '') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const { stdout: left } = await run('pgrep', ['-f', 'sleep 300']).catch(() => ({ stdout: '' }));
    assert.equal(left.trim(), '', 'the build process tree is gone');
  });

  test('the web interface in Chromium: a running build on the dashboard, its live log, an SBOM download, an advisory with its CVEs; accessible; actions need a maintainer', async () => {
    const shots = await screenshotDir();
    process.stdout.write(`# screenshots of the web pages: ${shots}\n`);
    const token = (await readFile(path.join(dir, 'data', 'admin.token'), 'utf8')).trim();
    const repo = path.join(dir, 'repos', 'webslow');
    await gitRepo(repo, { 'webslow.spec': specWith('webslow', 'echo "LENIX-WEB-LINE from %build"\nsleep 300') });
    assert.equal((await cli('source', 'add', 'webslow', repo)).code, 0);
    const running = await json<Build>('build', 'webslow');
    const browser = await launchBrowser();
    try {
      // The pages' Content-Security-Policy forbids inline scripts; axe-core is injected as one, so the test bypasses it.
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
      const checkA11y = async (name: string) => {
        const violations = await accessibility(page);
        assert.deepEqual(violations, [], `${name}: accessibility violations`);
      };
      // Dashboard: the running build shows up (the page refreshes its live parts itself).
      await page.goto(`${url}/`);
      await page
        .locator('#running')
        .getByText(/webslow-1\.0-1/)
        .waitFor({ timeout: 120_000 });
      assert.ok(await page.getByRole('main').isVisible());
      await page.screenshot({ path: path.join(shots, 'dashboard.png'), fullPage: true });
      await checkA11y('dashboard');

      // Its log page, followed live: the line %build prints arrives while the task is still running.
      const taskLink = page.locator('#running a', { hasText: /^\d+$/ }).first();
      await taskLink.click();
      await page.locator('#log').getByText('LENIX-WEB-LINE from %build').waitFor({ timeout: 120_000 });
      const taskId = Number(/tasks\/(\d+)\/log/.exec(page.url())![1]);
      assert.equal(
        (await api.json<{ state: string }>('GET', `/api/v1/tasks/${taskId}`)).state,
        'leased',
        'still running when the line is on screen',
      );
      await page.screenshot({ path: path.join(shots, 'live-log.png'), fullPage: true });
      await checkA11y('live log');
      // Anonymous actions are refused; pages show no token, private key or server path.
      for (const action of [
        `/builds/${running.id}/rebuild`,
        `/builds/${running.id}/cancel`,
        '/releases/1/approve',
        '/errata/LXSA-2026:0001/approve',
      ]) {
        const r = await fetch(`${url}${action}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'csrf=x',
          redirect: 'manual',
        });
        assert.ok([401, 403].includes(r.status), `${action}: ${r.status}`);
      }

      // A build page links SBOMs that download and parse.
      const builds = await json<{ id: number; package: string; state: string }[]>('builds');
      const hello = builds.find((b) => b.package === 'hello-c' && b.state === 'succeeded')!;
      await page.goto(`${url}/builds/${hello.id}`);
      assert.ok(await page.getByText('✓ verified').first().isVisible(), 'ledger statements are marked verified');
      await page.screenshot({ path: path.join(shots, 'build.png'), fullPage: true });
      await checkA11y('build');
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('link', { name: 'cyclonedx-json' }).click(),
      ]);
      const sbomFile = path.join(dir, 'web-sbom.json');
      await download.saveAs(sbomFile);
      const bom = JSON.parse(await readFile(sbomFile, 'utf8')) as {
        bomFormat: string;
        specVersion: string;
        components: unknown[];
      };
      assert.deepEqual([bom.bomFormat, bom.specVersion], ['CycloneDX', '1.6']);
      assert.ok(bom.components.length >= 2);

      // An advisory page lists its CVEs (a CVE reference added to the sample advisory by a maintainer).
      const [sample] = (await api.json<{ errata: { id: string }[] }>('GET', '/api/v1/errata')).errata;
      await api.json('PATCH', `/api/v1/errata/${sample!.id}`, {
        references: ['CVE-2026-40001', 'https://bugs.example.org/show_bug.cgi?id=7'],
      });
      await page.goto(`${url}/errata/${sample!.id}`);
      assert.deepEqual(await page.locator('ul.cves li').allInnerTexts(), ['CVE-2026-40001']);
      await page.screenshot({ path: path.join(shots, 'advisory.png'), fullPage: true });
      await checkA11y('advisory');

      for (const [name, p] of [
        ['builds', '/builds'],
        ['sources', '/sources'],
        ['repositories', '/repositories'],
        ['repository', '/repositories/lenix'],
        ['errata', '/errata'],
        ['ledger', `/ledger?build=${hello.id}`],
        ['login', '/login'],
      ] as const) {
        await page.goto(`${url}${p}`);
        await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
        await checkA11y(name);
        const text = await page.content();
        assert.ok(!text.includes(token), `${p} shows no token`);
        assert.ok(!text.includes(dir), `${p} shows no server path`);
        assert.doesNotMatch(text, /PRIVATE KEY|PRIVATE\+KEY/, `${p} shows no private key`);
      }

      // A maintainer signs in and the actions appear (with their form token).
      await page.goto(`${url}/login`);
      await page.getByLabel(/API token/).fill(token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.goto(`${url}/builds/${hello.id}`);
      assert.ok(await page.getByRole('button', { name: 'Rebuild' }).isVisible());
    } finally {
      await browser.close();
      await cli('build', 'cancel', String(running.id)); // the node is free for the next tests
    }
  });

  test('sandbox: no network, no writes to the host home folder, no view of the server data folder', async () => {
    const hits: string[] = [];
    const listener = net.createServer((s) => {
      hits.push('connection');
      s.destroy();
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const port = (listener.address() as net.AddressInfo).port;
    const home = os.homedir();
    const db = path.join(dir, 'data', 'server', 'lenix.db');
    const cases: [string, string, RegExp][] = [
      [
        'net',
        `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}' || { echo "SANDBOX-CHECK: tcp connect to 127.0.0.1:${port} failed"; exit 1; }`,
        /SANDBOX-CHECK: tcp connect/,
      ],
      [
        'home',
        `touch "${home}/lenix-sandbox-escape" || { echo "SANDBOX-CHECK: cannot write to ${home}"; exit 1; }`,
        /SANDBOX-CHECK: cannot write to/,
      ],
      [
        'data',
        `test -r ${db} && cat ${db} > /dev/null || { echo "SANDBOX-CHECK: cannot read ${db}"; exit 1; }`,
        /SANDBOX-CHECK: cannot read/,
      ],
    ];
    try {
      for (const [name, build, line] of cases) {
        const repo = path.join(dir, 'repos', `escape-${name}`);
        await gitRepo(repo, { [`escape-${name}.spec`]: specWith(`escape-${name}`, build) });
        assert.equal((await cli('source', 'add', `escape-${name}`, repo)).code, 0);
        const r = await cli('build', `escape-${name}`, '--wait', '--json');
        assert.equal(r.code, 1, 'lenix build --wait exits 1 when the build fails');
        const b = JSON.parse(r.stdout) as Build;
        assert.equal(b.state, 'failed');
        assert.equal(b.reasonCode, 'BUILD_FAILED');
        const binary = b.tasks.find((t) => t.kind === 'binary')!;
        const log = await cli('logs', String(binary.id));
        assert.match(log.stdout, line);
        assert.match(log.stdout, /lenix: rpmbuild exited with status 1/);
      }
    } finally {
      listener.close();
    }
    assert.deepEqual(hits, [], 'nothing reached the listener');
    assert.equal(existsSync(path.join(home, 'lenix-sandbox-escape')), false);
    // The server and other builds are unaffected.
    const ok = await json<Build>('build', 'lenix-multi', '--wait');
    assert.equal(ok.state, 'succeeded');
  });

  test('unknown source and missing token are refused by the CLI with a coded error', async () => {
    const r = await cli('build', 'no-such-source');
    assert.equal(r.code, 4);
    assert.match(r.stderr, /^lenix: SOURCE_NOT_FOUND: /);
    const anon = await lenix(['build', 'hello-c', '--server', url], {
      ...env,
      LENIX_CONFIG: path.join(dir, 'none.json'),
    });
    assert.equal(anon.code, 3);
    assert.match(anon.stderr, /UNAUTHENTICATED/);
  });

  test('every role logs to DATA/logs; a crashed child is restarted; Ctrl-C stops everything, helpers included; a restart resumes', async () => {
    const serverLog = await readFile(path.join(dir, 'data', 'logs', 'server.log'), 'utf8');
    assert.match(serverLog, /"msg":"build created"/, "the server's JSON log is in server.log");
    // kill -9 the build node: lenix up starts it again, and it builds.
    const { stdout: pids } = await run('pgrep', [
      '-f',
      `lenix.js node --server .* --work ${path.join(dir, 'data', 'node', 'work')}`,
    ]);
    for (const pid of pids.trim().split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    await up.waitFor(/the node exited \(SIGKILL\); restarting it in 1 s/);
    const rebuilt = await json<Build>('build', 'lenix-hello-data', '--wait');
    assert.equal(rebuilt.state, 'succeeded');

    const before = await json<{ id: number }[]>('builds', '--limit', '500');
    assert.equal(await up.stop('SIGINT'), 0);
    await assert.rejects(fetch(`${url}/api/v1/health`), 'the server is down');
    const agents = await run('pgrep', ['-f', `gpg-agent --homedir ${path.join(dir, 'data', 'signer', 'gnupg')}`]).catch(
      () => ({ stdout: '' }),
    );
    assert.equal(agents.stdout.trim(), '', "the signer's gpg-agent is stopped too");
    const port = new URL(url).port;
    up = new Proc(
      ['up', '--data', path.join(dir, 'data'), '--port', port, '--local-source-root', path.join(dir, 'repos')],
      env,
    );
    await up.waitFor(/ready: /);
    assert.match(up.out, /samples: already present/);
    const afterRestart = await json<{ id: number }[]>('builds', '--limit', '500');
    assert.deepEqual(
      afterRestart.map((b) => b.id),
      before.map((b) => b.id),
    );
    const b = await json<Build>('build', 'lenix-hello-data', '--wait');
    assert.equal(b.state, 'succeeded');
  });
});
