import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ApiClient } from '../../src/client/http.js';
import { signNote, type NoteSigner } from '../../src/ledger/note.js';
import { type Proc, lenix } from './cli.js';
import { cyclonedxJsonErrors, cyclonedxXmlErrors, parseSpdxTagValue, spdxJsonErrors } from './schemas.js';
import { parseRpmPurl } from '../../src/attest/sbom.js';
import { mkdir, writeFile } from 'node:fs/promises';

/**
 * The longer scenarios of the `lenix up` suite (test/e2e-up.test.ts), run against its one `lenix up`:
 * proofs with lenix verify, SBOMs, and the web interface in Chromium.
 */

const run = promisify(execFile);

/** Re-sign a note's text with another key (a forged checkpoint). */
function resign(signer: NoteSigner, note: string): string {
  const text = note.slice(0, note.lastIndexOf('\n\n') + 1);
  return signNote(text, [signer]);
}
/** A build as `lenix build --json` prints it (the fields the suite reads). */
export type UpBuild = {
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

/** What the `lenix up` suite shares with its longer scenarios (test/e2e-up.test.ts fills it in before()). */
export interface UpContext {
  dir: string;
  env: NodeJS.ProcessEnv;
  up: Proc;
  url: string;
  api: ApiClient;
  cli: (...args: string[]) => ReturnType<typeof lenix>;
  json: <T>(...args: string[]) => Promise<T>;
}

export async function verifyScenario(c: UpContext): Promise<void> {
  const logKey = (await (await fetch(`${c.url}/ledger/key`)).text()).trim();
  assert.match(c.up.out, new RegExp(`ledger key .*: ${logKey.replace(/[+/]/g, '\\$&')}`));
  const [, logPqKey] = (await (await fetch(`${c.url}/ledger/keys`)).text()).trim().split('\n');
  const witnessKey = /witness \S+, key \(lenix verify --witness-key KEY\): (\S+)/.exec(c.up.out)?.[1] ?? '';
  assert.match(witnessKey, /^lenix\.local\/witness\+[0-9a-f]{8}\+/);
  assert.equal(Buffer.from(witnessKey.split('+')[2]!, 'base64')[0], 0x04, 'an Ed25519 cosignature key (type 0x04)');
  // The default build target and its build repository.
  const target = await c.cli('target', 'show', 'lx9', '--json');
  assert.equal(target.code, 0, target.stderr);
  assert.equal((JSON.parse(target.stdout) as { buildRepo: string }).buildRepo, 'lx9-build');
  const pkgs = [
    'hello-c-1.2-1.x86_64.rpm',
    'lenix-hello-data-1.1-1.noarch.rpm',
    'lenix-multi-2.0-1.noarch.rpm',
    'lenix-multi-config-2.0-1.noarch.rpm',
  ];
  for (const name of pkgs) {
    const file = path.join(c.dir, 'verify', name);
    await mkdir(path.dirname(file), { recursive: true });
    await c.api.download(`/repos/lenix/x86_64/Packages/${name}`, file);
    await c.api.download(`/repos/lenix/x86_64/Packages/${name}.proof`, `${file}.proof`);
    const online = await c.cli('verify', file, '--log-key', logKey);
    assert.equal(online.code, 0, online.stderr);
    for (const stage of ['source', 'build', 'sign', 'test', 'release'])
      assert.match(online.stdout, new RegExp(`^  ${stage} +entry \\d+`, 'm'), `${name}: ${stage}`);
    const pqKey = path.join(c.dir, 'verify', 'mldsa65.pub');
    await writeFile(pqKey, await (await fetch(`${c.url}/ledger/mldsa65.pub`)).text());
    const pq = await c.cli('verify', file, '--log-key', logKey, '--pq-key', pqKey);
    assert.equal(pq.code, 0, `ML-DSA-65 signatures: ${pq.stderr}`);
    // The strictest pinning: the log's Ed25519 and ML-DSA-44 checkpoint keys, and the witness lenix c.up runs.
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
      { ...c.env, LENIX_SERVER: 'http://127.0.0.1:9' },
    );
    assert.equal(strict.code, 0, `log ML-DSA-44 and witness cosignatures: ${strict.stderr}`);
    const offline = await lenix(['verify', file, '--bundle', `${file}.proof`, '--log-key', logKey], {
      ...c.env,
      LENIX_SERVER: 'http://127.0.0.1:9',
    });
    assert.equal(offline.code, 0, offline.stderr);
    assert.equal(offline.stdout, online.stdout);
  }
  const file = path.join(c.dir, 'verify', pkgs[0]!);
  const bundle = JSON.parse(await readFile(`${file}.proof`, 'utf8')) as {
    checkpoint: string;
    entries: { index: number; entry: string; proof: string[] }[];
  };
  const tampered = async (what: string, change: (b: typeof bundle) => void, rpm = file) => {
    const b = JSON.parse(JSON.stringify(bundle)) as typeof bundle;
    change(b);
    const f = path.join(c.dir, 'verify', `${what}.proof`);
    await writeFile(f, JSON.stringify(b));
    const r = await c.cli('verify', rpm, '--bundle', f, '--log-key', logKey);
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
  const forged = (await import('../../src/ledger/note.js')).ed25519Signer(
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
  const { ed25519Cosigner } = await import('../../src/ledger/note.js');
  const stranger = ed25519Cosigner('lenix.local/witness', new Uint8Array(32).fill(3), Date.now).verifierKey;
  const unwitnessed = await c.cli(
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
  const stateFile = path.join(c.dir, 'ledger-state.json');
  const remembered = JSON.parse(await readFile(stateFile, 'utf8')) as Record<string, { size: number; root: string }>;
  assert.ok(remembered[logKey]!.size > 3, 'verify remembered the checkpoint it checked');
  await writeFile(stateFile, JSON.stringify({ [logKey]: { size: 3, root: 'ab'.repeat(32) } }));
  const fork = await c.cli('verify', file, '--log-key', logKey);
  assert.notEqual(fork.code, 0);
  assert.match(fork.stderr, /checkpoint: not consistent with the checkpoint of size 3/);
  await writeFile(stateFile, JSON.stringify({ [logKey]: { size: 1_000_000, root: 'ab'.repeat(32) } }));
  assert.match(
    (await c.cli('verify', file, '--log-key', logKey)).stderr,
    /fewer than the 1000000 seen before \(rolled back\)/,
  );
  await writeFile(stateFile, JSON.stringify(remembered));
  // The RPM itself changed: its digest is in no statement.
  const changed = path.join(c.dir, 'verify', 'changed.rpm');
  const bytes = await readFile(file);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 10) ^ 1, bytes.length - 10);
  await writeFile(changed, bytes);
  assert.match(await tampered('rpm', () => undefined, changed), /no (sign|build) statement/);
}

export async function sbomScenario(c: UpContext): Promise<void> {
  const repo = (await (await fetch(`${c.url}/api/v1/repos/lenix`)).json()) as {
    currentSnapshot: number;
    arches: string[];
    snapshots: { id: number; packages: { name: string; arch: string; sha256: string }[] }[];
  };
  const snap = repo.snapshots.find((s) => s.id === repo.currentSnapshot)!;
  const served = new Map<string, { file: string; sha256: string }>();
  for (const p of snap.packages) {
    const file = path.join(c.dir, 'sbom', 'pkgs', p.name);
    await mkdir(path.dirname(file), { recursive: true });
    const sha = await c.api.download(`/repos/lenix/${repo.arches[0]}/Packages/${p.name}`, file);
    served.set(sha, { file, sha256: sha });
  }
  // The four samples, and any earlier version an earlier test released (a repository keeps every version).
  assert.equal(served.size, new Set(snap.packages.map((p) => p.sha256)).size);
  assert.ok(served.size >= 4, `${served.size} packages served`);
  const get = async (u: string) => {
    const r = await fetch(`${c.url}${u}`);
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
  const builds = await c.json<{ id: number; package: string; state: string }[]>('builds');
  const hello = builds.find((b) => b.package === 'hello-c' && b.state === 'succeeded')!;
  for (const f of formats) {
    const out = path.join(c.dir, 'sbom', `build.${f}`);
    const r = await c.cli('sbom', `build:${hello.id}`, '--format', f, '--output', out);
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
  const logKey = (await (await fetch(`${c.url}/ledger/key`)).text()).trim();
  const sbomFile = path.join(c.dir, 'sbom', 'snapshot.cdx.json');
  await writeFile(sbomFile, docs['cyclonedx-json']!);
  const ok = await c.cli('verify', '--sbom', sbomFile, '--log-key', logKey);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /sbom +entry \d+ +cyclonedx-json SBOM of snapshot:lenix:/);
  const edited = path.join(c.dir, 'sbom', 'edited.cdx.json');
  await writeFile(edited, docs['cyclonedx-json']!.replace(/"version": "1\.2-1"/, '"version": "1.2-2"'));
  assert.notEqual(await readFile(edited, 'utf8'), docs['cyclonedx-json']);
  const bad = await c.cli('verify', '--sbom', edited, '--log-key', logKey);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /sbom: no sbom statement/);
}
