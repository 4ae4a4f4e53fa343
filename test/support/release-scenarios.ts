import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gitRepo, specWith, until } from './cli.js';
import type { DnfClient } from './dnf.js';
import { osvErrors } from './schemas.js';
import { flip, type Release, type ReleaseContext } from './release-context.js';

/**
 * The longer scenarios of the release suite (test/e2e-release.test.ts), run against its server, signer,
 * tester and node: published copies and fsck, and errata through dnf, OVAL and OSV.
 */

const run = promisify(execFile);
export async function copiesScenario(ctx: ReleaseContext): Promise<void> {
  const repoDir = path.join(ctx.dir, 'server', 'repos', 'r1');
  const pkgDir = path.join(repoDir, 'mirror', 'x86_64', 'Packages');
  const name = await until('gated in the mirror tree', async () =>
    (await readdir(pkgDir).catch(() => [] as string[])).find((f) => f.startsWith('gated-')),
  );
  const file = path.join(pkgDir, name);
  const digest = async (f: string) =>
    createHash('sha256')
      .update(await readFile(f))
      .digest('hex');
  const sha = await digest(file);
  const blob = path.join(ctx.dir, 'server', 'blobs', sha.slice(0, 2), sha.slice(2));
  const [pub, blobSt] = [await stat(file), await stat(blob)];
  assert.notEqual(pub.ino, blobSt.ino, 'the mirror copy is not a hard link to the blob');
  assert.equal(pub.mode & 0o777, 0o644, 'readable by mirrors running as another user');
  // A snapshot folder holds metadata only: packages are served from the blob store by digest.
  const current = path.join(repoDir, 'current', 'x86_64');
  assert.deepEqual(
    (await readdir(current)).filter((f) => !f.startsWith('.')),
    ['repodata'],
  );
  const hidden = await fetch(`${ctx.url}/repos/r1/x86_64/.cache/primary.xml`);
  assert.equal(hidden.status, 404, 'the publisher’s cache is not served');
  const served = async () => {
    const r = await fetch(`${ctx.url}/repos/r1/x86_64/Packages/${name}`);
    const body = Buffer.from(await r.arrayBuffer());
    return {
      status: r.status,
      sha: r.status === 200 ? createHash('sha256').update(body).digest('hex') : JSON.parse(body.toString()).code,
    };
  };
  const fsckRun = async (...extra: string[]) => {
    const r = await ctx.cli('fsck', '--data', path.join(ctx.dir, 'server'), '--json', ...extra);
    return {
      code: r.code,
      report: JSON.parse(r.stdout) as {
        clean: boolean;
        problems: { kind: string; problem: string; sha256: string; repair: string | null }[];
      },
    };
  };
  // (An earlier test left an unsigned blob corrupt on purpose; these checks look at this package's digest.)
  const mine = (r: Awaited<ReturnType<typeof fsckRun>>) => r.report.problems.filter((q) => q.sha256 === sha);
  assert.deepEqual(mine(await fsckRun()), [], 'nothing wrong with this package to begin with');
  assert.deepEqual(await served(), { status: 200, sha });

  // A flipped byte in the blob store: refused, never served (the blob was hashed when first served, and is
  // hashed again because its file changed); the mirror copy is unchanged.
  const b = await readFile(blob);
  flip(b);
  await writeFile(blob, b);
  assert.deepEqual(await served(), { status: 500, sha: 'BLOB_CORRUPT' });
  // A flipped byte in the mirror copy as well.
  const p = await readFile(file);
  flip(p);
  await writeFile(file, p);
  const found = await fsckRun();
  assert.equal(found.code, 1);
  assert.deepEqual(
    mine(found)
      .map((q) => [q.kind, q.problem])
      .sort(),
    [
      ['blob', 'corrupt'],
      ['published', 'corrupt'],
    ],
  );
  // Both copies bad: nothing to repair from until one is good again. Put the blob back by hand, then repair.
  flip(b);
  await writeFile(blob, b);
  const repaired = await fsckRun('--repair');
  assert.match(
    repaired.report.problems.find((q) => q.kind === 'published' && q.sha256 === sha)!.repair ?? '',
    /^restored from /,
  );
  assert.deepEqual(await served(), { status: 200, sha });
  assert.equal(await digest(file), sha);

  // A bad blob is restored from a good mirror copy.
  flip(b);
  await writeFile(blob, b);
  const blobRepair = await fsckRun('--repair');
  assert.match(
    blobRepair.report.problems.find((q) => q.kind === 'blob' && q.sha256 === sha)!.repair ?? '',
    /^restored from /,
  );
  assert.equal(await digest(blob), sha);
  assert.deepEqual(mine(await fsckRun()), [], 'clean again');
  assert.deepEqual(await served(), { status: 200, sha });
  // Metadata is checked too: a changed primary.xml is named (it is rebuilt by republishing, not from a blob).
  const repodata = path.join(current, 'repodata');
  const primary = path.join(repodata, (await readdir(repodata)).find((f) => f.endsWith('primary.xml.gz'))!);
  const original = await readFile(primary);
  await writeFile(primary, Buffer.concat([original, Buffer.from('x')]));
  const meta = await fsckRun();
  assert.equal(meta.code, 1);
  assert.ok(
    meta.report.problems.some((q) => q.kind === 'metadata' && q.problem === 'corrupt'),
    JSON.stringify(meta.report.problems),
  );
  await writeFile(primary, original);
  assert.ok(!(await fsckRun()).report.problems.some((q) => q.kind === 'metadata'));

  // Republishing reads no package: it writes new metadata from the stored entries, and the mirror tree copies
  // nothing that did not change.
  const mirrorBefore = await stat(file);
  const again = await ctx.cli('repo', 'republish', 'r1', '--wait', '--json');
  assert.equal(again.code, 0, again.stderr);
  const rel = JSON.parse(again.stdout) as Release;
  assert.equal(rel.state, 'published');
  // The mirror tree follows the publish (after the release is published): wait until it shows the new snapshot.
  await until(
    'the mirror tree to show the new snapshot',
    async () =>
      (await readFile(path.join(repoDir, 'mirror', '.snapshot'), 'utf8').catch(() => '')).trim() ===
      String(rel.snapshot),
  );
  assert.equal((await stat(file)).mtimeMs, mirrorBefore.mtimeMs, 'an unchanged package is not copied again');
  assert.deepEqual(
    await readFile(path.join(repoDir, 'mirror', 'x86_64', 'repodata', 'repomd.xml')),
    await readFile(path.join(repoDir, 'current', 'x86_64', 'repodata', 'repomd.xml')),
  );
  assert.deepEqual(await served(), { status: 200, sha });
}

export async function errataScenario(ctx: ReleaseContext): Promise<void> {
  // A repository set up as an AlmaLinux-style product: AL prefix (ALSA ids), OSV ecosystem AlmaLinux:9.
  assert.equal(
    (
      await ctx.cli(
        'repo',
        'create',
        'er',
        '--arch',
        'x86_64',
        '--errata-prefix',
        'AL',
        '--osv-ecosystem',
        'AlmaLinux:9',
      )
    ).code,
    0,
  );
  const spec = (name: string, version: string) =>
    specWith(name, 'echo ctx.build')
      .replace('Version: 1.0', `Version: ${version}`)
      .replace('- 1.0-1', `- ${version}-1`);
  const pRepo = await ctx.addSource('erp', { 'erp.spec': spec('erp', '1.0') });
  const qRepo = await ctx.addSource('erq', { 'erq.spec': spec('erq', '1.0') });
  const v1 = [await ctx.build('erp'), await ctx.build('erq')];
  for (const id of v1) assert.equal(ctx.lastTask(await ctx.pipeline(id), 'test')!.state, 'succeeded');
  const first = JSON.parse(
    (await ctx.cli('release', String(v1[0]), String(v1[1]), '--to', 'er', '--approve', '--wait', '--json')).stdout,
  ) as Release;
  assert.equal(first.state, 'published');
  const installed = async (name: string) => {
    const c = await ctx.client(name, 'er');
    const r = await c.dnf('install erp erq');
    assert.equal(r.code, 0, r.out);
    return c;
  };
  const host = await installed('er-security');
  const byAdvisory = await installed('er-advisory');
  const critical = await installed('er-critical');

  await writeFile(path.join(pRepo, 'erp.spec'), spec('erp', '1.1'));
  await gitRepo(pRepo, {}, 'erp 1.1');
  await writeFile(path.join(qRepo, 'erq.spec'), spec('erq', '2.0'));
  await gitRepo(qRepo, {}, 'erq 2.0');
  const p11 = await ctx.build('erp');
  const q20 = await ctx.build('erq');
  for (const id of [p11, q20]) assert.equal(ctx.lastTask(await ctx.pipeline(id), 'test')!.state, 'succeeded');

  // Bad input changes nothing: each is refused with its code.
  const count = async () =>
    JSON.parse((await ctx.cli('errata', 'list', '--repo', 'er', '--json')).stdout).length as number;
  const refused = async (code: string, ...args: string[]) => {
    const r = await ctx.cli('errata', 'create', '--repo', 'er', ...args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, new RegExp(`^lenix: ${code}: `, 'm'), args.join(' '));
  };
  await refused(
    'ERRATA_INVALID',
    '--type',
    'security',
    '--severity',
    'Important',
    '--title',
    'x',
    '--cve',
    'CVE-26-1',
    '--from-build',
    String(p11),
  );
  await refused('ERRATA_INVALID', '--type', 'security', '--title', 'no severity', '--from-build', String(p11));
  await refused('ERRATA_PACKAGE_UNKNOWN', '--type', 'bugfix', '--title', 'x', '--package', 'erp-9.9-1.noarch');
  // Text that XML cannot carry never reaches updateinfo, OVAL or the feed (NUL cannot be a command-line argument; the property test in errata.test.ts covers it).
  for (const title of ['bell\u0007title', 'form\u000cfeed', 'not a char \uffff'])
    await refused('ERRATA_INVALID', '--type', 'bugfix', '--title', title, '--from-build', String(p11));
  assert.equal(await count(), 0);

  const created = await ctx.cli(
    'errata',
    'create',
    '--repo',
    'er',
    '--type',
    'security',
    '--severity',
    'Important',
    '--title',
    'erp security update',
    '--synopsis',
    'Important: erp security update',
    '--description',
    'Fixes a flaw in erp.',
    '--cve',
    'CVE-2026-12345',
    '--bug',
    'https://bugs.example.org/show_bug.cgi?id=4242',
    '--from-build',
    String(p11),
    '--json',
  );
  assert.equal(created.code, 0, created.stderr);
  const adv = JSON.parse(created.stdout) as { id: string; status: string };
  assert.match(adv.id, /^ALSA-\d{4}:\d{4}$/);
  await refused(
    'ERRATA_EXISTS',
    '--id',
    adv.id,
    '--type',
    'security',
    '--severity',
    'Low',
    '--title',
    'again',
    '--from-build',
    String(p11),
  );
  assert.equal(await count(), 1);
  // Drafts are not public.
  assert.equal((await fetch(`${ctx.url}/api/v1/errata/${adv.id}`)).status, 404);
  assert.equal((await ctx.cli('errata', 'approve', adv.id)).code, 0);
  const second = JSON.parse(
    (await ctx.cli('release', String(p11), String(q20), '--to', 'er', '--approve', '--wait', '--json')).stdout,
  ) as Release;
  assert.equal(second.state, 'published');
  const shown = (await (await fetch(`${ctx.url}/api/v1/errata/${adv.id}`)).json()) as {
    status: string;
    packages: { nevra: string }[];
  };
  assert.equal(shown.status, 'released');
  assert.deepEqual(
    shown.packages.map((p) => p.nevra),
    ['erp-1.1-1.noarch'],
  );

  // What real dnf makes of it.
  const list = await host.dnf('--refresh updateinfo list --security');
  assert.equal(list.code, 0, list.out);
  const lines = list.out.split('\n').filter((l) => /^\S+-\d{4}:\d+ /.test(l));
  assert.deepEqual(
    lines.map((l) => l.trim().split(/\s+/)),
    [[adv.id, 'Important/Sec.', 'erp-1.1-1.noarch']],
  );
  const info = await host.dnf(`updateinfo info ${adv.id}`);
  assert.match(info.out, /CVE-2026-12345/);
  assert.match(info.out, /Severity: Important/);
  assert.match(info.out, /Type: security/);
  const noneCritical = await critical.dnf('--refresh update --sec-severity=Critical');
  assert.equal(noneCritical.code, 0, noneCritical.out);
  assert.doesNotMatch(noneCritical.out, /Upgrading:|Upgraded:/);

  // OVAL before the update: the definition is true (erp 1.0 installed, signed by the repository key).
  const ovalFile = path.join(ctx.dir, 'er.oval.xml');
  await writeFile(ovalFile, await (await fetch(`${ctx.url}/errata/oval/er.xml`)).text());
  const validate = await run('oscap', ['oval', 'validate', ovalFile]).then(
    () => ({ code: 0, out: '' }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  );
  assert.equal(validate.code, 0, validate.out);
  const evalOval = async (c: DnfClient) => (await c.sh(`OSCAP_PROBE_ROOT="$ROOT" oscap oval eval "${ovalFile}"`)).out;
  const defLine = (out: string) => /Definition oval:[^:]+:def:\d+: (true|false)/.exec(out)?.[1];
  assert.equal(defLine(await evalOval(host)), 'true', 'vulnerable before the update');

  const sec = await host.dnf('update --security');
  assert.equal(sec.code, 0, sec.out);
  const q = await host.sh('rpm --root "$ROOT" -q erp erq');
  assert.match(q.out, /erp-1\.1-1\.noarch/);
  assert.match(q.out, /erq-1\.0-1\.noarch/, '--security leaves the plain update alone');
  assert.equal(defLine(await evalOval(host)), 'false', 'not vulnerable after it');

  const advisory = await byAdvisory.dnf(`--refresh update --advisory ${adv.id}`);
  assert.equal(advisory.code, 0, advisory.out);
  const q2 = await byAdvisory.sh('rpm --root "$ROOT" -q erp erq');
  assert.match(q2.out, /erp-1\.1-1\.noarch/);
  assert.match(q2.out, /erq-1\.0-1\.noarch/);

  // OSV record validates against the official schema; the feed names the advisory.
  const osv = (await (await fetch(`${ctx.url}/errata/osv/${adv.id}.json`)).json()) as {
    id: string;
    affected: { package: { ecosystem: string; name: string }; ranges: { events: Record<string, string>[] }[] }[];
  };
  assert.equal(osvErrors(osv), null);
  assert.equal(osv.id, adv.id);
  assert.deepEqual(
    osv.affected.map((a) => [a.package.ecosystem, a.package.name, a.ranges[0]!.events]),
    [['AlmaLinux:9', 'erp', [{ introduced: '0' }, { fixed: '1.1-1' }]]],
  );
  assert.match(await (await fetch(`${ctx.url}/errata/feed.atom`)).text(), new RegExp(adv.id));

  // Import: an upstream updateinfo proposes drafts for what Lenix built at that version or later.
  const upstream = path.join(ctx.dir, 'upstream-updateinfo.xml');
  await writeFile(
    upstream,
    `<?xml version="1.0" encoding="UTF-8"?>
<updates>
<update from="upstream@example.org" status="final" type="bugfix" version="2">
  <id>RHBA-2026:1234</id><title>erq bug fix update</title><issued date="2026-11-02 00:00:00"/><severity>None</severity>
  <description>Fixes erq.</description>
  <references><reference href="https://bugs.example.org/show_bug.cgi?id=77" id="77" type="bugzilla" title="bug 77"/></references>
  <pkglist><collection short="c"><name>c</name>
    <package name="erq" epoch="0" version="1.9" release="1" arch="noarch" src="erq-1.9-1.src.rpm"><filename>erq-1.9-1.noarch.rpm</filename></package>
  </collection></pkglist>
</update>
<update from="upstream@example.org" status="final" type="security" version="1">
  <id>RHSA-2026:0099</id><title>nothere security update</title><issued date="2026-11-02 00:00:00"/><severity>Critical</severity>
  <references><reference href="https://www.cve.org/CVERecord?id=CVE-2026-9999" id="CVE-2026-9999" type="cve" title="CVE-2026-9999"/></references>
  <pkglist><collection short="c"><name>c</name>
    <package name="nothere" epoch="0" version="1.0" release="1" arch="noarch" src="nothere-1.0-1.src.rpm"><filename>nothere-1.0-1.noarch.rpm</filename></package>
  </collection></pkglist>
</update>
</updates>
`,
  );
  const imported = await ctx.cli('errata', 'import', upstream, '--repo', 'er', '--json');
  assert.equal(imported.code, 0, imported.stderr);
  const got = JSON.parse(imported.stdout) as {
    proposed: { id: string; status: string; upstreamId: string; packages: { nevra: string }[] }[];
    skipped: { upstream: string; why: string }[];
  };
  assert.deepEqual(
    got.proposed.map((a) => [a.status, a.upstreamId, a.packages.map((p) => p.nevra)]),
    [['draft', 'RHBA-2026:1234', ['erq-2.0-1.noarch']]],
  );
  assert.match(got.proposed[0]!.id, /^ALBA-\d{4}:\d{4}$/);
  assert.deepEqual(
    got.skipped.map((x) => x.upstream),
    ['RHSA-2026:0099'],
  );
  const again = JSON.parse(
    (await ctx.cli('errata', 'import', upstream, '--repo', 'er', '--json')).stdout,
  ) as typeof got;
  assert.deepEqual(again.proposed, []);
  assert.match(again.skipped.find((x) => x.upstream === 'RHBA-2026:1234')!.why, /already imported/);

  // The proposal names erq-2.0-1, which is already published: approved, it goes out with a republish.
  const bugfix = got.proposed[0]!.id;
  assert.equal((await ctx.cli('errata', 'approve', bugfix)).code, 0);
  const republished = await ctx.cli('repo', 'republish', 'er', '--wait', '--json');
  assert.equal(republished.code, 0, republished.stderr);
  assert.equal(
    ((await (await fetch(`${ctx.url}/api/v1/errata/${bugfix}`)).json()) as { status: string }).status,
    'released',
  );
  const bugfixes = await host.dnf('--refresh updateinfo list --bugfix');
  assert.match(
    bugfixes.out,
    new RegExp(`^${bugfix.replace(/[:.]/g, '\\$&')} +bugfix +erq-2\\.0-1\\.noarch$`, 'm'),
    bugfixes.out,
  );
}
