import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { BIN, lenix } from './support/cli.js';
import { DnfClient } from './support/dnf.js';
import { buildTested, releaseBuild } from './support/mirrors.js';
import { cyclonedxJsonErrors, spdxJsonErrors } from './support/schemas.js';
import { type System, startSystem } from './support/system.js';

const run = promisify(execFile);

const spec = (name: string) => `Name: ${name}
Version: 1.0
Release: 1
Summary: Lenix test package ${name}
License: MIT
BuildArch: noarch

%description
Test package.

%install
mkdir -p %{buildroot}/usr/share/${name} %{buildroot}/etc
echo ${name} > %{buildroot}/usr/share/${name}/data
echo setting=1 > %{buildroot}/etc/${name}.conf

%files
/usr/share/${name}
%config(noreplace) /etc/${name}.conf

%changelog
* Sun Nov 01 2026 Lenix Tests <tests@lenix.invalid> - 1.0-1
- Test package
`;

interface Row {
  package: string;
  name: string;
  verdict: string;
  reason: string | null;
  commit: string | null;
  buildId: number | null;
  key: string | null;
  releases: string[];
  ledgerEntries?: number[];
  headerSha256: string | null;
  changed: { path: string; flags: string }[];
  configChanged: { path: string }[];
}
interface Report {
  failed: boolean;
  checkpoint: { origin: string; treeSize: number } | null;
  packages: Row[];
}

/**
 * Issue 20: `lenix verify --installed` over a real dnf installroot — two packages installed by dnf from a published
 * Lenix repository and two from elsewhere — online, after an installed file was edited, and offline from the
 * repository's proof bundles with the server stopped; `lenix sbom --installed` validated and deterministic.
 */
describe('verify and describe what is installed', { timeout: 900_000 }, () => {
  let dir: string;
  let sys: System;
  let client: DnfClient;
  let logKey: string;
  let signingKey: string;
  const builds: Record<string, { id: number; commit: string }> = {};

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-installed-'));
    sys = await startSystem(dir);
  });

  after(async () => {
    await sys?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** `lenix ARGS` inside the client's namespace (its root's /usr mounted), its JSON output and exit status. */
  const inRoot = async (args: string, env: Record<string, string>): Promise<{ code: number; out: string }> => {
    const vars = Object.entries(env)
      .map(([k, v]) => `${k}='${v}'`)
      .join(' ');
    const r = await client.sh(
      `${vars} "${process.execPath}" "${BIN}" ${args} > "$D/out.txt" 2> "$D/err.txt"; echo "exit=$?"`,
    );
    const code = Number(/exit=(\d+)/.exec(r.out)?.[1] ?? -1);
    const err = await readFile(path.join(dir, 'client', 'err.txt'), 'utf8');
    return { code, out: (await readFile(path.join(dir, 'client', 'out.txt'), 'utf8')) + err };
  };
  const online = () => ({ LENIX_CONFIG: path.join(dir, 'cfg', 'config.json'), LENIX_SERVER: sys.url });
  const offline = () => ({ LENIX_CONFIG: path.join(dir, 'cfg', 'config.json') });
  const report = async (args: string, env: Record<string, string>): Promise<{ code: number; r: Report }> => {
    const { code, out } = await inRoot(`verify --installed --root "$ROOT" --log-key '${logKey}' --json ${args}`, env);
    try {
      return { code, r: JSON.parse(out) as Report };
    } catch {
      throw new Error(`not JSON (exit ${code}): ${out}`);
    }
  };
  const verdicts = (r: Report) => Object.fromEntries(r.packages.map((p) => [p.name, p.verdict]));

  test('two Lenix packages are proven (commit, build, key), the others are not from this Lenix; exit 0', async () => {
    await sys.cli('repo', 'create', 'inst', '--arch', 'x86_64');
    for (const name of ['insta', 'instb']) {
      const id = await buildTested(sys, dir, name, spec(name), '1.0');
      const b = await sys.api.json<{ commit: string }>('GET', `/api/v1/builds/${id}`);
      builds[name] = { id, commit: b.commit };
      await releaseBuild(sys, id, 'inst');
    }
    logKey = (await (await fetch(`${sys.url}/ledger/key`)).text()).trim();
    signingKey = (await sys.lx.keys.list()).signingKey ?? '';
    assert.match(signingKey, /^[0-9A-Fa-f]{40}$/);

    // A package from elsewhere, built here with rpmbuild and installed with rpm.
    const top = path.join(dir, 'foreign');
    await mkdir(top, { recursive: true });
    await writeFile(path.join(top, 'foreign.spec'), spec('foreign'));
    await run('rpmbuild', ['-bb', '--define', `_topdir ${top}`, path.join(top, 'foreign.spec')], {
      env: { ...process.env, HOME: top },
    });
    const foreign = path.join(top, 'RPMS', 'noarch', 'foreign-1.0-1.noarch.rpm');

    const reposDir = path.join(dir, 'client-repos');
    await mkdir(reposDir, { recursive: true });
    await writeFile(path.join(reposDir, 'inst.repo'), await (await fetch(`${sys.url}/repos/inst.repo`)).text());
    client = new DnfClient(path.join(dir, 'client'), reposDir);
    await client.base(path.join(dir, 'tester-work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm'));
    const installed = await client.dnf('install insta instb');
    assert.equal(installed.code, 0, installed.out);
    const other = await client.sh(`rpm --root "$ROOT" -i --nodeps "${foreign}"`);
    assert.equal(other.code, 0, other.out);

    const { code, r } = await report('', online());
    assert.equal(code, 0, JSON.stringify(r, null, 2));
    assert.equal(r.failed, false);
    assert.deepEqual(verdicts(r), {
      foreign: 'not from this Lenix',
      insta: 'proven',
      instb: 'proven',
      'lenix-host-base': 'not from this Lenix',
    });
    for (const name of ['insta', 'instb']) {
      const row = r.packages.find((p) => p.name === name)!;
      assert.equal(row.commit, builds[name]!.commit);
      assert.equal(row.buildId, builds[name]!.id);
      assert.equal(row.key?.toUpperCase(), signingKey.toUpperCase());
      assert.ok(
        row.releases.some((x) => x.startsWith('inst@')),
        row.releases.join(),
      );
    }
    assert.match(r.packages.find((p) => p.name === 'foreign')!.reason ?? '', /unsigned/);
    // The look-up by header digest is public API too; a malformed digest is a 400 with a code.
    const header = r.packages.find((p) => p.name === 'insta')!.headerSha256!;
    const byHeader = await fetch(`${sys.url}/api/v1/ledger/lookup?header=${header}`);
    assert.equal(byHeader.status, 200);
    const stages = ((await byHeader.json()) as { entries: { entry: string }[] }).entries.map(
      (e) =>
        (
          JSON.parse(
            Buffer.from(JSON.parse(Buffer.from(e.entry, 'base64').toString()).payload, 'base64').toString(),
          ) as { predicateType: string }
        ).predicateType,
    );
    for (const t of ['/source/', 'slsa.dev/provenance', '/sign/', 'test-result', '/release/'])
      assert.ok(
        stages.some((s) => s.includes(t)),
        `${t} in ${stages.join()}`,
      );
    const malformed = await fetch(`${sys.url}/api/v1/ledger/lookup?header=zz`);
    assert.equal(malformed.status, 400);
    assert.equal(((await malformed.json()) as { code: string }).code, 'BAD_REQUEST');

    // The table a person reads: package, verdict, commit, build, key, release.
    const table = await inRoot(`verify --installed --root "$ROOT" --log-key '${logKey}'`, online());
    assert.equal(table.code, 0, table.out);
    assert.match(table.out, /^PACKAGE\s+VERDICT\s+COMMIT\s+BUILD\s+KEY\s+RELEASE$/m);
    const insta = table.out.split('\n').find((l) => l.startsWith('insta-1.0-1.noarch'))!;
    assert.ok(insta.includes(builds['insta']!.commit.slice(0, 12)), insta);
    assert.ok(insta.includes(` ${builds['insta']!.id} `), insta);
    assert.ok(insta.toUpperCase().includes(signingKey.slice(-16).toUpperCase()), insta);
    // Only the packages named.
    const one = await report('instb', online());
    assert.deepEqual(verdicts(one.r), { instb: 'proven' });
    // A name that is not installed, or not a name at all: a coded one-line error, nothing else.
    const missing = await inRoot(`verify --installed nosuchpkg --root "$ROOT" --log-key '${logKey}'`, online());
    assert.equal(missing.code, 4, missing.out);
    assert.match(missing.out, /^lenix: NOT_FOUND: package nosuchpkg is not installed$/m);
    // A folder with no rpm database is refused, and left as it was (rpm would make an empty database there).
    const empty = path.join(dir, 'not-a-root');
    await mkdir(empty);
    const none = await lenix(['verify', '--installed', '--root', empty, '--log-key', logKey], online());
    assert.equal(none.code, 4, none.stderr);
    assert.match(none.stderr, /^lenix: NOT_FOUND: no rpm database under /m);
    assert.deepEqual(await readdir(empty), []);
    const odd = await inRoot(`verify --installed 'a/b' --root "$ROOT" --log-key '${logKey}'`, online());
    assert.match(odd.out, /^lenix: BAD_REQUEST: not a package name: a\/b$/m);
    assert.notEqual(odd.code, 0);
  });

  test('an edited file makes its package "modified files" (with the path) and the run fail; an edited %config file does not', async () => {
    const edit = await client.sh(
      `echo tampered >> "$ROOT/usr/share/insta/data" && echo setting=2 > "$ROOT/etc/instb.conf"`,
    );
    assert.equal(edit.code, 0, edit.out);
    const { code, r } = await report('', online());
    assert.equal(code, 1, JSON.stringify(r, null, 2));
    assert.equal(r.failed, true);
    assert.equal(verdicts(r)['insta'], 'modified files');
    assert.equal(verdicts(r)['instb'], 'proven');
    const insta = r.packages.find((p) => p.name === 'insta')!;
    assert.deepEqual(
      insta.changed.map((f) => f.path),
      ['/usr/share/insta/data'],
    );
    assert.match(insta.changed[0]!.flags, /5/);
    assert.deepEqual(
      r.packages.find((p) => p.name === 'instb')!.configChanged.map((f) => f.path),
      ['/etc/instb.conf'],
    );
  });

  test('with the server stopped, the repository proof bundles give the same verdicts; the installed SBOM validates and is the same twice', async () => {
    const before = (await report('', online())).r;
    // The proof bundles the repository serves next to its packages.
    const proofs = path.join(dir, 'proofs');
    await mkdir(proofs, { recursive: true });
    const listing = await (await fetch(`${sys.url}/repos/inst/x86_64/Packages/`)).text();
    const files = [...listing.matchAll(/href="([^"/]+\.rpm)"/g)].map((m) => m[1]!);
    assert.deepEqual(files.sort(), ['insta-1.0-1.noarch.rpm', 'instb-1.0-1.noarch.rpm']);
    for (const f of files) {
      const res = await fetch(`${sys.url}/repos/inst/x86_64/Packages/${f}.proof`);
      assert.equal(res.status, 200);
      await writeFile(path.join(proofs, `${f}.proof`), await res.text());
    }
    await sys.stop();

    const modified = await report(`--proofs "${proofs}"`, offline());
    assert.equal(modified.code, 1);
    assert.deepEqual(verdicts(modified.r), verdicts(before));
    const strip = (r: Report) => r.packages.map(({ ledgerEntries: _e, ...p }) => p);
    assert.deepEqual(strip(modified.r), strip(before));

    // The edited file put back: every Lenix package proven again, offline, exit 0.
    const restore = await client.sh(`echo insta > "$ROOT/usr/share/insta/data"`);
    assert.equal(restore.code, 0, restore.out);
    const clean = await report(`--proofs "${proofs}"`, offline());
    assert.equal(clean.code, 0, JSON.stringify(clean.r, null, 2));
    assert.deepEqual(verdicts(clean.r), {
      foreign: 'not from this Lenix',
      insta: 'proven',
      instb: 'proven',
      'lenix-host-base': 'not from this Lenix',
    });
    // A bundle that does not verify (a statement changed) is a failed proof, not a pass and not a crash.
    const bad = path.join(dir, 'proofs-bad');
    await mkdir(bad, { recursive: true });
    for (const f of await readdir(proofs)) {
      const b = JSON.parse(await readFile(path.join(proofs, f), 'utf8')) as { entries: { proof: string[] }[] };
      if (f.startsWith('instb'))
        b.entries[0]!.proof = b.entries[0]!.proof.map((h) => h.replace(/^./, (c) => (c === '0' ? '1' : '0')));
      await writeFile(path.join(bad, f), JSON.stringify(b));
    }
    const tampered = await report(`--proofs "${bad}"`, offline());
    assert.equal(tampered.code, 1);
    assert.equal(verdicts(tampered.r)['instb'], 'proof failed');
    assert.equal(verdicts(tampered.r)['insta'], 'proven');

    // The SBOM of the machine, offline: CycloneDX 1.6 and SPDX 2.3, valid, byte-identical twice.
    for (const format of ['cyclonedx-json', 'spdx-json']) {
      const out = [1, 2].map((n) => `"$D/sbom-${format}-${n}.json"`);
      for (const o of out) {
        const r = await inRoot(
          `sbom --installed --root "$ROOT" --proofs "${proofs}" --log-key '${logKey}' --format ${format} -o ${o}`,
          offline(),
        );
        assert.equal(r.code, 0, r.out);
      }
      const [a, b] = await Promise.all(
        [1, 2].map((n) => readFile(path.join(dir, 'client', `sbom-${format}-${n}.json`), 'utf8')),
      );
      assert.equal(a, b);
      if (format === 'cyclonedx-json') {
        assert.equal(await cyclonedxJsonErrors(a!), null);
        const doc = JSON.parse(a!) as {
          components: { name: string; purl: string; properties: { name: string; value: string }[] }[];
        };
        const prop = (name: string, key: string) =>
          doc.components.find((c) => c.name === name)?.properties.find((p) => p.name === key)?.value;
        assert.equal(prop('insta', 'lenix:git-commit'), builds['insta']!.commit);
        assert.equal(prop('instb', 'lenix:build-id'), String(builds['instb']!.id));
        assert.equal(prop('foreign', 'lenix:origin'), 'not from this Lenix');
        assert.ok(doc.components.every((c) => c.purl.startsWith('pkg:rpm/')));
      } else {
        const doc = JSON.parse(a!) as { packages: { name: string; sourceInfo?: string }[] };
        assert.equal(spdxJsonErrors(doc), null);
        assert.match(doc.packages.find((p) => p.name === 'insta')!.sourceInfo ?? '', /built by Lenix build/);
        assert.match(doc.packages.find((p) => p.name === 'foreign')!.sourceInfo ?? '', /not from this Lenix/);
      }
    }
  });
});
