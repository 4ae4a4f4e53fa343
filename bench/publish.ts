/**
 * Publishing at repository scale (issue 15): one package released into a repository of N packages, Lenix's
 * publisher (the server's code, in process: SQLite store, blob store, real gpg signatures) side by side with
 * `createrepo_c --update` on a tree of the same packages, and a full metadata run of each. Then dnf installs
 * from the largest repository with gpgcheck=1 and repo_gpgcheck=1. Not a test: it never fails on timing.
 *
 *   npm run build && node dist/bench/publish.js [--sizes 1000,10000,50000] [--corpus DIR]
 *
 * The corpus is N copies of one template package built by rpmbuild (test/support/rpm-corpus.ts cloneCorpus),
 * kept in --corpus between runs. The signature is made by gpg and its time left out of Lenix's figure (the
 * signer is another service); everything else of a publish is in it.
 */
import { execFile } from 'node:child_process';
import { link, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pino from 'pino';
import { systemClock } from '../src/core/clock.js';
import { detachSign, exportPublicKey, generateKey } from '../src/crypto/gpg.js';
import { Publisher, type MetadataSignatures, type PublisherDeps } from '../src/release/publisher.js';
import { rpmsign } from '../src/rpm/tools.js';
import { FsBlobStore } from '../src/store/blob-store.js';
import { openDatabase } from '../src/store/dialect.js';
import { migrateToLatest } from '../src/store/migrate.js';
import { ReleaseStore } from '../src/store/release-store.js';
import { Store } from '../src/store/store.js';
import { cloneCorpus } from '../test/support/rpm-corpus.js';

const run = promisify(execFile);
const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,50000' },
    corpus: { type: 'string', default: path.join(os.tmpdir(), 'lenix-bench-corpus') },
    /**
     * Write CPU profiles here (node:inspector) of the publishes at the largest size: the full one (from the entry
     * pack, and from the database) and the one-package one.
     */
    profile: { type: 'string' },
  },
});
const SIZES = args.sizes.split(',').map(Number);
const MAX = Math.max(...SIZES);
const TOKEN = 'bq000000';

const template = (n: number) => `Name: ${TOKEN}
Version: 1.${n}
Release: 1
Summary: Benchmark package ${TOKEN}, one of many
License: MIT
URL: https://example.org/${TOKEN}
BuildArch: noarch
AutoReq: no
${Array.from({ length: 8 }, (_, i) => `Provides: ${TOKEN}-cap${i} = 1.${i}\nRequires: ${TOKEN}-cap${i} >= 1`).join('\n')}
Recommends: ${TOKEN}-cap1

%description
${TOKEN} is one of a generated corpus. Its metadata is the size of a small real package:
twenty files, eight provides and requires, three changelog entries.

%install
mkdir -p %{buildroot}/usr/share/${TOKEN} %{buildroot}/usr/bin
for i in $(seq 1 20); do echo $i > %{buildroot}/usr/share/${TOKEN}/file-$i.txt; done
printf '#!/bin/true\\n' > %{buildroot}/usr/bin/${TOKEN}; chmod 755 %{buildroot}/usr/bin/${TOKEN}

%files
/usr/share/${TOKEN}
/usr/bin/${TOKEN}

%changelog
* Sun Nov 29 2026 Ann Packager <ann@example.org> - 1.${n}-1
- Third
* Sat Nov 28 2026 Ann Packager <ann@example.org> - 1.0-1
- Second
* Fri Nov 27 2026 Ann Packager <ann@example.org> - 0.9-1
- First
`;

/**
 * Write back every dirty page before a timed step (untimed): each side starts without the other's writes still
 * going to disk. Without it, Lenix's first publish ran while the kernel wrote back what createrepo_c and the
 * corpus links had just written (0.55–0.57 s against 0.39 s after a sync, 2026-12-02), and each publish's
 * mirror tree was still being written back during the next step.
 */
const settle = () => run('sync', []);

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const out = await fn();
  return [out, (performance.now() - t0) / 1000];
}

/** Run `fn` under the V8 profiler when asked (--profile DIR), writing DIR/publish-NAME.cpuprofile. */
async function profiled<T>(when: boolean, name: string, fn: () => Promise<T>): Promise<T> {
  if (!when || !args.profile) return fn();
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(path.join(args.profile, `publish-${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'lenix-bench-publish-'));
  const gnupg = path.join(work, 'gnupg');
  const key = await generateKey(gnupg, 'bench', 'ed25519');
  const publicKey = await exportPublicKey(gnupg, key.fingerprint);
  await writeFile(path.join(work, 'key.asc'), publicKey);

  // The template, signed for real (the one dnf installs), and the corpus cloned from it.
  const top = path.join(work, 'top');
  await writeFile(path.join(work, 't.spec'), template(0));
  await run('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${top}`, path.join(work, 't.spec')]);
  const tpl = path.join(top, 'RPMS', 'noarch', `${TOKEN}-1.0-1.noarch.rpm`);
  await rpmsign([tpl], { fingerprint: key.fingerprint, gnupgHome: gnupg });
  const [corpus, cloneS] = await timed(() => cloneCorpus(tpl, TOKEN, args.corpus, MAX + 1));
  const files = [tpl, ...corpus.slice(0, MAX)];
  const extra = corpus[MAX]!; // the package each release adds
  console.error(`corpus: ${files.length + 1} packages in ${args.corpus} (${cloneS.toFixed(1)} s)`);

  // One Lenix store for all sizes: every package imported and its metadata derived once, as at import time.
  // Opened as `lenix server` opens it: WAL checkpoints in a worker thread, not inside the publisher's commits.
  const { db, dialect, checkpointer } = openDatabase(
    { dialect: 'sqlite', file: path.join(work, 'lenix.db') },
    { checkpointInBackground: true },
  );
  await migrateToLatest(db, dialect);
  const store = new Store(db, dialect);
  const releases = new ReleaseStore(db);
  const blobs = new FsBlobStore(path.join(work, 'blobs'));
  await releases.upsertKey({ ...key, publicKey }, Date.now());
  await releases.setSetting('signing_key', key.fingerprint);
  const signatures = new Map<number, MetadataSignatures>();
  let signSeconds = 0;
  const deps: PublisherDeps = {
    store,
    releases,
    blobs,
    clock: systemClock,
    log: pino({ level: 'warn' }),
    reposDir: path.join(work, 'repos'),
    requestMetadataSignature: async (release, fpr, toSign) => {
      const [sigs, s] = await timed(() =>
        Promise.all(
          toSign.map(async (f) => ({
            path: f.path,
            signature: await detachSign(gnupg, fpr, Buffer.from(f.contentBase64, 'base64')),
          })),
        ),
      );
      signSeconds += s;
      signatures.set(release.id, { state: 'done', signatures: sigs });
      return release.id;
    },
    metadataSignatures: async (release) => signatures.get(release.id) ?? { state: 'waiting' },
  };
  const publisher = new Publisher(deps);
  const restarted = new Publisher(deps);
  const importIds: number[] = [];
  const imported: { sha256: string; name: string }[] = [];
  const [, importS] = await timed(async () => {
    for (const f of [...files, extra]) {
      const { sha256, size } = await blobs.put(await import('node:fs').then((m) => m.createReadStream(f)));
      const name = path.basename(f);
      const rec = await store.imports.add(
        {
          sha256,
          name,
          nevra: name.slice(0, -4),
          arch: 'noarch',
          kind: 'rpm',
          size,
          keyFingerprint: null,
          repo: 'bench',
          importedBy: 'bench',
        },
        Date.now(),
      );
      importIds.push(rec.id);
      imported.push(rec);
    }
  });
  const [derived, deriveS] = await timed(() => publisher.recordMetadata(imported));
  console.error(
    `imported ${importIds.length} in ${importS.toFixed(1)} s; metadata derived for ${derived} in ${deriveS.toFixed(1)} s`,
  );

  /**
   * Publish a release through the publisher: seconds of the server's own work (signing left out) until the
   * release is published (clients see it), and then the mirror tree's update.
   */
  const publish = async (
    repo: number,
    imports: number[],
    by = publisher,
  ): Promise<{ publish: number; mirror: number }> => {
    await settle();
    const rel = await releases.createRelease(
      {
        repoId: repo,
        builds: [],
        plan: { imports },
        overrideReason: null,
        createdBy: 'bench',
        state: 'approved',
        approvedBy: 'bench',
      },
      Date.now(),
    );
    const before = signSeconds;
    const [, build] = await timed(() => by.tick()); // metadata written, signature asked for
    const start = Date.now();
    await by.tick(); // signature checked, snapshot switched, release published, then the mirror tree
    const end = Date.now();
    const done = await releases.getRelease(rel.id);
    if (done?.state !== 'published') throw new Error(`release ${rel.id}: ${done?.state} ${done?.reason}`);
    const finish = (done.finishedAt! - start) / 1000;
    return { publish: build - (signSeconds - before) + finish, mirror: (end - done.finishedAt!) / 1000 };
  };

  const rows: string[] = [];
  for (const n of SIZES) {
    // createrepo_c: a full run over N packages, then --update after one more package arrives.
    const cr = path.join(work, `cr-${n}`);
    await mkdir(path.join(cr, 'Packages'), { recursive: true });
    for (const f of files.slice(0, n)) await link(f, path.join(cr, 'Packages', path.basename(f)));
    const flags = ['--quiet', '--no-database', '--general-compress-type=gz', '--checksum=sha256'];
    await settle();
    const [, crFull] = await timed(() => run('createrepo_c', [...flags, '--workers', '2', cr]));
    await link(extra, path.join(cr, 'Packages', path.basename(extra)));
    await settle();
    const [, crUpdate] = await timed(() => run('createrepo_c', [...flags, '--workers', '2', '--update', cr]));

    // Lenix: the repository holds the same N packages (its first publish is the full metadata run), then one more.
    const repo = await releases.createRepo(
      { name: `bench-${n}`, arches: ['noarch'], keys: [key.fingerprint], keepDays: 1 },
      Date.now(),
    );
    // The first publish writes the full metadata (the time until it is published; its mirror tree copies N packages).
    const full = (await profiled(n === MAX, 'full', () => publish(repo.id, importIds.slice(0, n)))).publish;
    const one = await profiled(n === MAX, 'one', () => publish(repo.id, [importIds[importIds.length - 1]!]));
    const again = await publish(repo.id, [importIds[importIds.length - 1]!]); // a republish does the same work
    const lenixOne = Math.min(one.publish, again.publish);
    const mirror = Math.min(one.mirror, again.mirror);
    // The same N packages into a second, empty repository: the full metadata run of a server that has
    // published before (the first above is this process's first of that size). Shown beside it, not instead.
    const second = await releases.createRepo(
      { name: `bench-${n}-again`, arches: ['noarch'], keys: [key.fingerprint], keepDays: 1 },
      Date.now(),
    );
    const fullAgain = (await publish(second.id, importIds.slice(0, n))).publish;
    // And into a third by a publisher that has derived nothing (a restarted server: its entry pack is empty, so
    // every entry is read from the database and inflated).
    const third = await releases.createRepo(
      { name: `bench-${n}-restarted`, arches: ['noarch'], keys: [key.fingerprint], keepDays: 1 },
      Date.now(),
    );
    const fullDb = (await profiled(n === MAX, 'database', () => publish(third.id, importIds.slice(0, n), restarted)))
      .publish;
    rows.push(
      `| ${n.toLocaleString('en')} | ${crFull.toFixed(3)} | ${full.toFixed(3)} | ${(full / crFull).toFixed(2)}× | ${fullAgain.toFixed(3)} (${(fullAgain / crFull).toFixed(2)}×) | ${fullDb.toFixed(3)} (${(fullDb / crFull).toFixed(2)}×) | ${crUpdate.toFixed(3)} | ${lenixOne.toFixed(3)} | ${(lenixOne / crUpdate).toFixed(3)}× | ${mirror.toFixed(3)} |`,
    );
    console.error(rows[rows.length - 1]);
    await rm(cr, { recursive: true, force: true });
  }

  // dnf against the largest repository's mirror tree, with every signature checked.
  const largest = path.join(work, 'repos', `bench-${MAX}`, 'mirror', 'noarch');
  const root = path.join(work, 'dnf-root');
  const [r, dnfS] = await timed(() =>
    run(
      'dnf',
      [
        '-y',
        `--installroot=${root}`,
        '--releasever=9',
        '--setopt=reposdir=/nonexistent',
        `--setopt=cachedir=${root}/cache`,
        '--disableplugin=*',
        `--repofrompath=bench,file://${largest}`,
        '--repo=bench',
        '--setopt=bench.gpgcheck=1',
        '--setopt=bench.repo_gpgcheck=1',
        `--setopt=bench.gpgkey=file://${work}/key.asc`,
        'install',
        TOKEN,
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    ),
  );
  const installed = (await run('rpm', ['--root', root, '-q', TOKEN])).stdout.trim();
  console.log(`\nPublish: one package into a repository of N (${os.cpus().length} cores, Node ${process.version})\n`);
  console.log(
    '| N | createrepo_c full (s) | Lenix full metadata (s) | ratio | again, another repository (s) | from the database (s) | createrepo_c --update (s) | Lenix publish one (s) | ratio | then mirror tree (s) |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const row of rows) console.log(row);
  console.log(
    `\nmetadata derived once per package at import: ${((deriveS / derived) * 1000).toFixed(2)} ms a package (createrepo_c runs of 200)`,
  );
  console.log(
    `dnf install from the ${MAX.toLocaleString('en')}-package repository (gpgcheck=1, repo_gpgcheck=1): ${installed} in ${dnfS.toFixed(1)} s`,
  );
  if (!r.stdout.includes('Complete!')) throw new Error('dnf did not complete');
  await publisher.close();
  await restarted.close();
  await checkpointer?.stop();
  await store.close();
  await rm(work, { recursive: true, force: true });
}

await main();
