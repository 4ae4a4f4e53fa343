import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { lenix, specWith } from './support/cli.js';
import { buildTested, mirrorTreeCurrent, releaseBuild, startRsyncd } from './support/mirrors.js';
import { DnfClient } from './support/dnf.js';
import { type System, startSystem } from './support/system.js';

const run = promisify(execFile);

/**
 * Issue 18, acceptances 1 and 2: mirrors made with rsync from Lenix's tree, served over HTTP on loopback, one left behind
 * by a newer release. The .repo file points dnf at Lenix's metalink, which names the mirrors and the hashes of the
 * current repomd.xml (and, for a grace time, the previous one): dnf accepts the stale mirror only while its
 * metadata is an alternate, refuses it once `lenix repo expire` dropped the alternates, and installs the new
 * version through the fresh mirror, skipping the stale one. The checker then marks the stale mirror behind by one
 * snapshot and one serving an edited repomd.xml bad, and only the current one stays in the metalink.
 */
describe('mirrors, metalinks and the checker', { timeout: 600_000 }, () => {
  let dir: string;
  let sys: System;
  let web: http.Server;
  let webUrl: string;
  let rsyncd: { url: string; stop(): void } | undefined;
  const served: string[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-mirrors-'));
    sys = await startSystem(dir);
    // The mirrors' web server: plain files under DIR/mirrors, every request logged.
    const root = path.join(dir, 'mirrors');
    await mkdir(root, { recursive: true });
    web = http.createServer((req, res) => {
      const p = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const file = path.join(root, path.normalize(p));
      void stat(file).then(
        (st) => {
          served.push(`200 ${p}`);
          res.writeHead(200, { 'content-length': st.size });
          createReadStream(file).pipe(res);
        },
        () => {
          served.push(`404 ${p}`);
          res.writeHead(404).end();
        },
      );
    });
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    webUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
    rsyncd = await startRsyncd(dir, { mir: path.join(dir, 'server', 'repos', 'mir', 'mirror') });
  });

  after(async () => {
    rsyncd?.stop();
    web?.close();
    await sys?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const release = async (version: string) => {
    const spec = specWith('mirp', 'true').replace('Version: 1.0', `Version: ${version}`);
    await releaseBuild(sys, await buildTested(sys, dir, 'mirp', spec, version), 'mir');
  };
  /**
   * What a mirror does: rsync the published tree from the origin's rsync module (updates moved into place at the
   * end, deletions last), as docs/operations.md documents it.
   */
  const rsyncTo = async (mirror: string) => {
    // The mirror tree follows a publish (mirrors pull on their own schedule): wait until it shows the current one.
    await mirrorTreeCurrent(sys, dir, 'mir');
    await run('rsync', [
      '-a',
      '--delay-updates',
      '--delete-delay',
      `${rsyncd!.url}/mir/`,
      path.join(dir, 'mirrors', mirror, 'mir'),
    ]);
  };
  const metalink = async () => (await fetch(`${sys.url}/metalink?repo=mir&arch=x86_64`)).text();

  test('dnf takes the stale mirror only while its metadata is an alternate, and the fresh one over it', async () => {
    await sys.cli('repo', 'create', 'mir', '--arch', 'x86_64');
    await release('1.0');
    await mkdir(path.join(dir, 'mirrors', 'stale'), { recursive: true });
    await mkdir(path.join(dir, 'mirrors', 'fresh'), { recursive: true });
    await rsyncTo('stale');
    await rsyncTo('fresh');
    // With no mirror registered the metalink names the origin itself; a registered mirror enters it once a check
    // found it current.
    assert.match(await metalink(), new RegExp(`>${sys.url}/repos/mir/x86_64/repodata/repomd\\.xml</url>`));
    await sys.cli('mirror', 'add', `${webUrl}/stale/`, '--country', 'DE', '--contact', 'stale@mirror.invalid');
    assert.doesNotMatch(await metalink(), /\/stale\//);
    assert.match((await sys.cli('mirror', 'check')).stdout, /\/stale\/ +mir\/x86_64 +current \(snapshot \d+\)/);

    await release('1.1');
    await rsyncTo('fresh');
    // The tree is browsable as mirrors show theirs, and its TIME file is the one rsync brought to the fresh mirror.
    const page = async (p: string) => {
      const r = await fetch(`${sys.url}${p}`, { redirect: 'manual' });
      return { status: r.status, location: r.headers.get('location'), text: await r.text() };
    };
    assert.deepEqual((await page('/repos/mir')).location, '/repos/mir/');
    assert.match((await page('/repos/mir/')).text, /<a href="x86_64\/">x86_64\/<\/a>[\s\S]*<a href="TIME">TIME<\/a>/);
    assert.match(
      (await page('/repos/mir/x86_64/')).text,
      /<a href="Packages\/">Packages\/<\/a>\n<a href="repodata\/">/,
    );
    const pkgs = (await page('/repos/mir/x86_64/Packages/')).text;
    assert.match(pkgs, /<title>Index of \/repos\/mir\/x86_64\/Packages\/<\/title>/);
    assert.match(pkgs, /<a href="mirp-1\.1-1\.noarch\.rpm">/);
    assert.match(pkgs, /<a href="mirp-1\.0-1\.noarch\.rpm">/, 'every version is kept (the default)');
    assert.match(
      (await page('/repos/mir/x86_64/repodata/')).text,
      /<a href="repomd\.xml">[\s\S]*<a href="repomd\.xml\.asc">/,
    );
    assert.equal((await page('/repos/mir/x86_64/nothing/')).status, 404);
    const time = (await page('/repos/mir/TIME')).text;
    assert.match(time, /^\d{10}\n$/);
    assert.equal(await readFile(path.join(dir, 'mirrors', 'fresh', 'mir', 'TIME'), 'utf8'), time);

    const dup = await lenix(['mirror', 'add', `${webUrl}/stale`], sys.env);
    assert.equal(dup.code, 5);
    assert.match(dup.stderr, /^lenix: MIRROR_EXISTS: /m);
    const bad = await lenix(['mirror', 'add', 'ftp://x.invalid/'], sys.env);
    assert.equal(bad.code, 2);

    // The metalink: the current repomd.xml, the previous one as an alternate, the stale mirror's URL.
    const ml = await metalink();
    assert.match(ml, /<metalink version="3\.0" xmlns="http:\/\/www\.metalinker\.org\/"/);
    assert.equal([...ml.matchAll(/<mm0:alternate>/g)].length, 1, ml);
    for (const h of ['md5', 'sha1', 'sha256', 'sha512'])
      assert.match(ml, new RegExp(`<hash type="${h}">[0-9a-f]+</hash>`));
    assert.match(
      ml,
      new RegExp(`location="DE" preference="100">${webUrl}/stale/mir/x86_64/repodata/repomd\\.xml</url>`),
    );

    const repoFile = await (await fetch(`${sys.url}/repos/mir.repo`)).text();
    assert.match(repoFile, new RegExp(`^metalink=${sys.url}/metalink\\?repo=mir&arch=\\$basearch$`, 'm'));
    assert.doesNotMatch(repoFile, /^baseurl=/m);
    const reposDir = path.join(dir, 'client', 'repos.d');
    await mkdir(reposDir, { recursive: true });
    await writeFile(path.join(reposDir, 'mir.repo'), repoFile);
    const c = new DnfClient(path.join(dir, 'client'), reposDir);
    await c.base(path.join(dir, 'tester-work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm'));
    const dnf = (args: string) => c.dnf(`--setopt=skip_if_unavailable=False --refresh ${args}`);
    const versions = async () => {
      const q = await dnf('repoquery --qf "%{name}-%{version}" mirp');
      return { code: q.code, out: q.out, found: q.out.split('\n').filter((l) => /^mirp-\d/.test(l)) };
    };

    // Only the stale mirror, its metadata an alternate: accepted (mirrors in mid-sync keep serving).
    const before = await versions();
    assert.equal(before.code, 0, before.out);
    assert.deepEqual(before.found, ['mirp-1.0']);

    // Emergency expire: the stale mirror's metadata is refused, and with no other mirror dnf fails.
    await sys.cli('repo', 'expire', 'mir');
    assert.equal([...(await metalink()).matchAll(/<mm0:alternate>/g)].length, 0);
    const refused = await versions();
    assert.notEqual(refused.code, 0, refused.out);
    assert.match(refused.out, /checksum doesn't match|Cannot download repomd\.xml/);

    // The fresh mirror added after it and checked (the stale one's last check, before 1.1, said current): dnf
    // tries the stale one first, skips it, and installs 1.1 from the fresh one.
    await sys.cli('mirror', 'add', `${webUrl}/fresh/`);
    await sys.cli('mirror', 'check', `${webUrl}/fresh/`);
    assert.match(await metalink(), /preference="100">[^<]*\/stale\/[\s\S]*preference="99">[^<]*\/fresh\//);
    served.length = 0;
    const installed = await dnf('install mirp');
    assert.equal(installed.code, 0, installed.out);
    assert.match((await c.sh('rpm --root "$ROOT" -q mirp')).out, /^mirp-1\.1-1\.noarch/m);
    assert.ok(served.includes('200 /stale/mir/x86_64/repodata/repomd.xml'), served.join('\n'));
    assert.ok(served.includes('200 /fresh/mir/x86_64/repodata/repomd.xml'), served.join('\n'));
    assert.ok(
      served.some((l) => /^200 \/fresh\/mir\/x86_64\/Packages\/mirp-1\.1-1\.noarch\.rpm$/.test(l)),
      served.join('\n'),
    );
    assert.ok(!served.some((l) => /^200 \/stale\/.*\.rpm$/.test(l)), 'nothing was installed from the stale mirror');

    // Acceptance 2: the checker. A third mirror serves an edited repomd.xml (one byte more, still valid XML).
    await run('cp', ['-a', path.join(dir, 'mirrors', 'fresh'), path.join(dir, 'mirrors', 'bad')]);
    const edited = path.join(dir, 'mirrors', 'bad', 'mir', 'x86_64', 'repodata', 'repomd.xml');
    await writeFile(edited, `${await readFile(edited, 'utf8')}\n`);
    await sys.cli('mirror', 'add', `${webUrl}/bad/`);
    const checked = await lenix(['mirror', 'check', '--json'], sys.env);
    assert.equal(checked.code, 1, 'a bad mirror fails the check');
    const checks = (
      JSON.parse(checked.stdout) as { checks: { mirrorUrl: string; state: string; behind: number | null }[] }
    ).checks;
    assert.deepEqual(
      checks.map((c) => [c.mirrorUrl.slice(webUrl.length), c.state, c.behind]),
      [
        ['/stale/', 'behind', 1],
        ['/fresh/', 'current', 0],
        ['/bad/', 'bad', null],
      ],
    );
    const listing = (await sys.cli('mirror', 'list')).stdout;
    assert.match(listing, /\/stale\/ +DE +behind by 1 snapshot \(serves \d+\) in mir\/x86_64 /);
    assert.match(listing, /\/fresh\/ +- +current /);
    assert.match(listing, /\/bad\/ +- +BAD: serves a repomd\.xml Lenix never published/);
    assert.match((await sys.cli('mirror', 'show', `${webUrl}/stale/`)).stdout, /mir\/x86_64: behind by 1 snapshot/);
    // Only the current mirror is in the metalink now; the web page shows each one's status loudly.
    const onlyFresh = await metalink();
    assert.match(onlyFresh, /\/fresh\/mir\/x86_64\/repodata\/repomd\.xml/);
    assert.doesNotMatch(onlyFresh, /\/(stale|bad)\//);
    const mirrorsPage = await (await fetch(`${sys.url}/mirrors`)).text();
    assert.match(mirrorsPage, /<span class="state-behind">behind<\/span> by 1/);
    assert.match(
      mirrorsPage,
      /<span class="state-bad">bad<\/span><br><span class="bad">[^<]*no snapshot of mir had: edited or tampered/,
    );
    assert.match(mirrorsPage, /<span class="state-current">current<\/span>/);

    const listed = JSON.parse((await sys.cli('mirror', 'list', '--json')).stdout) as { mirrors: { url: string }[] };
    assert.deepEqual(
      listed.mirrors.map((m) => m.url),
      [`${webUrl}/stale/`, `${webUrl}/fresh/`, `${webUrl}/bad/`],
    );
    await sys.cli('mirror', 'remove', `${webUrl}/stale/`);
    const gone = await lenix(['mirror', 'remove', `${webUrl}/stale/`], sys.env);
    assert.equal(gone.code, 4);
    assert.match(gone.stderr, /^lenix: MIRROR_NOT_FOUND: /m);
  });

  test('a DELETE with a JSON body reaches the server whole (the CLI removing a witness)', async () => {
    // Found here: Node sent a DELETE's body without a length, and the server refused the request as not HTTP.
    await sys.cli('ledger', 'witnesses', 'add', 'http://witness.invalid');
    await sys.cli('ledger', 'witnesses', 'remove', 'http://witness.invalid');
    assert.doesNotMatch((await sys.cli('ledger', 'witnesses', 'list')).stdout, /witness\.invalid/);
  });
});
