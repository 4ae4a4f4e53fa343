import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { convert } from 'xmlbuilder2';
import { EntryPack } from '../src/release/entry-pack.js';
import { MetadataMissing, PackReadFailed, writeRepodata } from '../src/release/repodata.js';
import { derivePackageMetadata, type PackageMetadata } from '../src/rpm/package-metadata.js';
import { buildCorpus } from './support/rpm-corpus.js';

const run = promisify(execFile);

const UPDATEINFO = `<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="errata@lenix.local" status="final" type="security" version="2">
    <id>LXSA-2026:0001</id>
    <title>Important: rich security update</title>
    <issued date="2026-11-29 00:00:00"/>
    <severity>Important</severity>
    <description>Fixes &lt;things&gt;.</description>
    <pkglist><collection short="lx"><name>lx</name>
      <package name="rich" epoch="3" version="2.4.1" release="7" arch="noarch" src="rich-2.4.1-7.src.rpm">
        <filename>rich-2.4.1-7.noarch.rpm</filename>
      </package>
    </collection></pkglist>
  </update>
</updates>
`;

type Doc = Record<string, unknown>;

/** The <package> elements of a primary/filelists/other document, by pkgid, as parsed objects. */
function packagesOf(kind: 'primary' | 'filelists' | 'other', gz: Buffer): Map<string, unknown> {
  const doc = convert(gunzipSync(gz).toString('utf8'), { format: 'object' }) as Doc;
  const root = doc[{ primary: 'metadata', filelists: 'filelists', other: 'otherdata' }[kind]] as Doc;
  const list = ([] as Doc[]).concat((root.package as Doc | Doc[] | undefined) ?? []);
  const id = (p: Doc) =>
    kind === 'primary' ? String((p.checksum as Doc)['#']) : String((p as Record<string, unknown>)['@pkgid']);
  return new Map(list.map((p) => [id(p), p]));
}

async function dataFiles(dir: string): Promise<Record<string, { file: Buffer; checksum: string; open: string }>> {
  const repomd = await readFile(path.join(dir, 'repodata', 'repomd.xml'), 'utf8');
  const out: Record<string, { file: Buffer; checksum: string; open: string }> = {};
  for (const m of repomd.matchAll(/<data type="([a-z_]+)">([\s\S]*?)<\/data>/g)) {
    const href = /<location href="([^"]+)"/.exec(m[2]!)![1]!;
    out[m[1]!] = {
      file: await readFile(path.join(dir, href)),
      checksum: /<checksum type="sha256">([0-9a-f]{64})/.exec(m[2]!)![1]!,
      open: /<open-checksum type="sha256">([0-9a-f]{64})/.exec(m[2]!)![1]!,
    };
  }
  return out;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('repository metadata from stored per-package entries, against createrepo_c', () => {
  let dir = '';
  let files: string[] = [];
  let entries: PackageMetadata[] = [];
  const ref = () => path.join(dir, 'ref');
  const ours = () => path.join(dir, 'ours');

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lenix-repodata-'));
    files = await buildCorpus(path.join(dir, 'corpus'));
    // createrepo_c over the whole folder (the reference), with the same updateinfo added by modifyrepo_c.
    await mkdir(path.join(ref(), 'Packages'), { recursive: true });
    for (const f of files) await symlink(f, path.join(ref(), 'Packages', path.basename(f)));
    await run('createrepo_c', ['--quiet', '--no-database', '--general-compress-type=gz', '--checksum=sha256', ref()]);
    await writeFile(path.join(dir, 'updateinfo.xml'), UPDATEINFO);
    await run('modifyrepo_c', [
      '--mdtype=updateinfo',
      '--compress-type=gz',
      '--checksum=sha256',
      path.join(dir, 'updateinfo.xml'),
      path.join(ref(), 'repodata'),
    ]);
    // Lenix: each package's entries derived on its own, then the repository written from them in another order.
    for (const f of files) {
      entries.push(
        ...(await derivePackageMetadata([{ file: f, name: path.basename(f), sha256: sha(await readFile(f)) }])),
      );
    }
    entries = entries.reverse();
    await mkdir(path.join(ours(), 'Packages'), { recursive: true });
    for (const f of files) await symlink(f, path.join(ours(), 'Packages', path.basename(f)));
    await writeRepodata({
      dir: ours(),
      packages: entries,
      previous: null,
      logDir: path.join(dir, 'logs'),
      fetch: async function* (keys) {
        const want = keys.map((k) => entries.find((e) => e.sha256 === k.sha256)!);
        yield want.slice(0, 2);
        yield want.slice(2);
      },
      updateinfo: UPDATEINFO,
      now: 1_796_000_000,
    });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('every package entry equals createrepo_c’s, field by field, in primary, filelists and other', async () => {
    assert.ok(files.length >= 4, `corpus built ${files.length} packages`);
    const [a, b] = [await dataFiles(ref()), await dataFiles(ours())];
    assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
    for (const kind of ['primary', 'filelists', 'other'] as const) {
      const [want, got] = [packagesOf(kind, a[kind]!.file), packagesOf(kind, b[kind]!.file)];
      assert.equal(got.size, files.length, `${kind}: one entry per package`);
      assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
      for (const [id, p] of want) assert.deepEqual(got.get(id), p, `${kind} entry of ${id}`);
    }
    // The corpus exercises what the comparison is about (so it cannot pass vacuously).
    const primary = gunzipSync(b.primary!.file).toString();
    for (const needle of [
      'epoch="3"',
      '<rpm:recommends>',
      '<rpm:suggests>',
      '<rpm:supplements>',
      '<rpm:enhances>',
      'pre="1"',
      '<file>/etc/rich/rich.conf</file>',
      'flags="LE"',
      '&lt;every&gt;',
    ])
      assert.ok(primary.includes(needle), `primary has ${needle}`);
    const other = gunzipSync(b.other!.file).toString();
    assert.equal(other.match(/<changelog /g)?.length, 3 * 3 + 1, 'three changelog entries in each rich package');
    assert.match(gunzipSync(b.filelists!.file).toString(), /<file type="ghost">\/var\/lib\/rich\/state<\/file>/);
  });

  test('repomd.xml names each file by its digests: several gzip members, one stream', async () => {
    const b = await dataFiles(ours());
    for (const [type, d] of Object.entries(b)) {
      assert.equal(sha(d.file), d.checksum, `${type} checksum`);
      assert.equal(sha(gunzipSync(d.file)), d.open, `${type} open-checksum`);
    }
    const members = (buf: Buffer) => {
      let n = 0;
      for (
        let i = buf.indexOf(Buffer.from([0x1f, 0x8b, 8]));
        i >= 0;
        i = buf.indexOf(Buffer.from([0x1f, 0x8b, 8]), i + 1)
      )
        n++;
      return n;
    };
    assert.ok(members(b.primary!.file) >= files.length + 2, 'a header, one member per package, a footer');
  });

  test('the next snapshot copies unchanged entries from the previous one and fetches only what changed', async () => {
    const fetchFrom = (seen: string[]) =>
      async function* (keys: readonly { sha256: string; file: string }[]) {
        seen.push(...keys.map((k) => k.file));
        // Like the store: a package without stored entries is left out of what is read.
        yield entries.filter((e) => keys.some((k) => k.sha256 === e.sha256));
      };
    // Snapshot 2: one package removed. Snapshot 3: it comes back. Each from its predecessor's cache.
    const [dropped, ...rest] = entries;
    const seen2: string[] = [];
    const two = await writeRepodata({
      dir: path.join(dir, 'two'),
      packages: rest,
      previous: ours(),
      logDir: path.join(dir, 'logs'),
      fetch: fetchFrom(seen2),
      updateinfo: null,
      now: 1_796_000_001,
    });
    assert.deepEqual([two.reused, two.fetched, seen2], [rest.length, 0, []]);
    const seen3: string[] = [];
    const three = await writeRepodata({
      dir: path.join(dir, 'three'),
      packages: entries,
      previous: path.join(dir, 'two'),
      logDir: path.join(dir, 'logs'),
      fetch: fetchFrom(seen3),
      updateinfo: null,
      now: 1_796_000_002,
    });
    assert.deepEqual([three.reused, three.fetched, seen3], [rest.length, 1, [dropped!.file]]);
    // Same documents as a write from scratch (entry order aside), and valid digests.
    const [a, b] = [await dataFiles(ours()), await dataFiles(path.join(dir, 'three'))];
    for (const kind of ['primary', 'filelists', 'other'] as const) {
      assert.deepEqual(packagesOf(kind, b[kind]!.file), packagesOf(kind, a[kind]!.file), kind);
      assert.equal(sha(b[kind]!.file), b[kind]!.checksum);
      assert.equal(sha(gunzipSync(b[kind]!.file)), b[kind]!.open);
    }
    // Most entries gone: the next snapshot compacts the log into a new generation; old generations are removed.
    const few = entries.slice(0, 2);
    const five = await writeRepodata({
      dir: path.join(dir, 'five'),
      packages: few,
      previous: path.join(dir, 'three'),
      logDir: path.join(dir, 'logs'),
      fetch: fetchFrom([]),
      updateinfo: null,
      now: 1_796_000_004,
    });
    assert.deepEqual([five.reused, five.fetched], [2, 0]);
    const six = await writeRepodata({
      dir: path.join(dir, 'six'),
      packages: entries,
      previous: path.join(dir, 'five'),
      logDir: path.join(dir, 'logs'),
      fetch: fetchFrom([]),
      updateinfo: null,
      now: 1_796_000_005,
    });
    assert.deepEqual([six.reused, six.fetched], [2, entries.length - 2]);
    const sixFiles = await dataFiles(path.join(dir, 'six'));
    for (const kind of ['primary', 'filelists', 'other'] as const) {
      assert.deepEqual(packagesOf(kind, sixFiles[kind]!.file), packagesOf(kind, a[kind]!.file), `six ${kind}`);
      assert.equal(sha(gunzipSync(sixFiles[kind]!.file)), sixFiles[kind]!.open);
    }
    const generations = new Set((await readdir(path.join(dir, 'logs'))).map((f) => f.split('-')[0]));
    assert.ok(generations.size <= 2, `at most two log generations are kept (${[...generations].join(', ')})`);

    // A package whose entries were never stored (published before they were derived) is named, not skipped.
    await assert.rejects(
      writeRepodata({
        dir: path.join(dir, 'missing'),
        packages: [...entries, { sha256: 'f'.repeat(64), file: 'never-derived-1-1.noarch.rpm' }],
        previous: null,
        logDir: path.join(dir, 'logs-missing'),
        fetch: fetchFrom([]),
        updateinfo: null,
        now: 1_796_000_006,
      }),
      (err: Error) => err instanceof MetadataMissing && /1 of \d+ packages have no stored metadata/.test(err.message),
    );

    // A cache from another boot (its plain files were never synced) is not trusted.
    const index = path.join(dir, 'three', '.cache', 'index.json');
    await writeFile(index, (await readFile(index, 'utf8')).replace(/"bootId":"[^"]+"/, '"bootId":"another-boot"'));
    const seen4: string[] = [];
    const four = await writeRepodata({
      dir: path.join(dir, 'four'),
      packages: entries,
      previous: path.join(dir, 'three'),
      logDir: path.join(dir, 'logs'),
      fetch: fetchFrom(seen4),
      updateinfo: null,
      now: 1_796_000_003,
    });
    assert.deepEqual([four.reused, four.fetched], [0, entries.length]);
    const fourFiles = await dataFiles(path.join(dir, 'four'));
    for (const kind of ['primary', 'filelists', 'other'] as const) {
      assert.deepEqual(packagesOf(kind, fourFiles[kind]!.file), packagesOf(kind, a[kind]!.file), `four ${kind}`);
      assert.equal(sha(gunzipSync(fourFiles[kind]!.file)), fourFiles[kind]!.open);
    }
  });

  test('entries this server derived are read from its entry pack in runs, the rest from the database', async () => {
    const seen: string[] = [];
    const fetchFrom = (into: string[]) =>
      async function* (keys: readonly { sha256: string; file: string }[]) {
        into.push(...keys.map((k) => k.file));
        yield entries.filter((e) => keys.some((k) => k.sha256 === e.sha256));
      };
    const packed = (list: readonly PackageMetadata[]) =>
      list.map((e) => ({ key: `${e.sha256}/${e.file}`, gz: e.gz, text: e.text }));
    const pack = new EntryPack(path.join(dir, 'pack'));
    const half = Math.ceil(entries.length / 2);
    await pack.add(packed(entries.slice(0, 2))); // two derivations: two runs in the pack's files
    await pack.add(packed(entries.slice(1, half))); // one already there is not added again
    const one = await writeRepodata({
      dir: path.join(dir, 'packed'),
      packages: entries,
      previous: null,
      logDir: path.join(dir, 'logs-packed'),
      fetch: fetchFrom(seen),
      pack,
      updateinfo: null,
      now: 1_796_000_010,
    });
    assert.deepEqual(
      [one.packed, one.fetched, seen.sort()],
      [
        half,
        entries.length - half,
        entries
          .slice(half)
          .map((e) => e.file)
          .sort(),
      ],
    );
    const a = await dataFiles(ours());
    const same = async (folder: string, without: string | null) => {
      const b = await dataFiles(folder);
      for (const kind of ['primary', 'filelists', 'other'] as const) {
        const want = packagesOf(kind, a[kind]!.file);
        if (without) want.delete(without);
        assert.deepEqual(packagesOf(kind, b[kind]!.file), want, `${folder} ${kind}`);
        assert.equal(sha(b[kind]!.file), b[kind]!.checksum);
        assert.equal(sha(gunzipSync(b[kind]!.file)), b[kind]!.open);
      }
    };
    await same(path.join(dir, 'packed'), null);
    // The next snapshot hashes the packed entries' text from the log they were copied onto.
    const seen2: string[] = [];
    const two = await writeRepodata({
      dir: path.join(dir, 'packed-two'),
      packages: entries.slice(1),
      previous: path.join(dir, 'packed'),
      logDir: path.join(dir, 'logs-packed'),
      fetch: fetchFrom(seen2),
      pack,
      updateinfo: null,
      now: 1_796_000_011,
    });
    assert.deepEqual([two.reused, two.packed, two.fetched, seen2], [entries.length - 1, 0, 0, []]);
    await same(path.join(dir, 'packed-two'), entries[0]!.sha256);
    // A pack file gone (it is a cache) fails the write as PackReadFailed, and nothing is left half-read: the
    // publisher drops the pack and writes from the database.
    const [primaryText] = (await readdir(path.join(dir, 'pack'))).filter((f) => f.endsWith('-primary.xml'));
    await rm(path.join(dir, 'pack', primaryText!));
    const write = () =>
      writeRepodata({
        dir: path.join(dir, 'packed-three'),
        packages: entries,
        previous: null,
        logDir: path.join(dir, 'logs-packed-three'),
        fetch: fetchFrom([]),
        pack,
        updateinfo: null,
        now: 1_796_000_012,
      });
    await assert.rejects(write(), (err: Error) => err instanceof PackReadFailed && /primary\.xml/.test(err.message));
    pack.drop();
    assert.deepEqual((await write()).fetched, entries.length);
    await same(path.join(dir, 'packed-three'), null);
    await pack.close();
  });

  test('dnf reads both alike: repoquery of every field, updateinfo, and an install from Lenix’s', async () => {
    const dnf = async (name: string, repoDir: string, ...args: string[]) => {
      const root = path.join(dir, `root-${name}-${args[0]}`);
      const { stdout } = await run(
        'dnf',
        [
          '-q',
          '-y',
          `--installroot=${root}`,
          '--releasever=9',
          '--setopt=reposdir=/nonexistent',
          `--setopt=cachedir=${path.join(root, 'cache')}`,
          '--disableplugin=*',
          `--repofrompath=r,file://${repoDir}`,
          '--repo=r',
          '--setopt=r.gpgcheck=0',
          ...args,
        ],
        { maxBuffer: 16 * 1024 * 1024 },
      );
      return stdout;
    };
    const qf = '%{name}|%{epoch}|%{version}|%{release}|%{arch}|%{summary}|%{license}|%{url}|%{size}|%{sourcerpm}';
    const queries = [
      ['repoquery', '--qf', qf],
      ...['provides', 'requires', 'recommends', 'suggests', 'supplements', 'enhances', 'conflicts', 'obsoletes'].map(
        (w) => ['repoquery', `--${w}`, '*'],
      ),
      ['repoquery', '--list', '*'],
      ['repoquery', '--changelogs', 'rich'],
      ['repoquery', '--advisory', 'LXSA-2026:0001'],
      ['repoquery', '--security', '--sec-severity', 'Important', '--qf', qf],
    ];
    for (const q of queries) {
      const [want, got] = [await dnf('ref', ref(), ...q), await dnf('ours', ours(), ...q)];
      assert.ok(want.trim().length > 0, `${q.join(' ')} answers something`);
      assert.equal(got, want, q.join(' '));
    }
    await dnf('install', ours(), 'install', 'rich-doc');
    const { stdout } = await run('rpm', ['--root', path.join(dir, 'root-install-install'), '-q', 'rich-doc']);
    assert.match(stdout, /^rich-doc-2\.4\.1-7/);
    assert.ok((await readdir(path.join(ours(), 'repodata'))).includes('repomd.xml'));
  });
});
