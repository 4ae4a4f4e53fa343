import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execText as run } from '../exec/exec.js';
import { keyFolder, withTempHome } from '../crypto/gpg.js';

const BIG = { maxBuffer: 16 * 1024 * 1024 };

/**
 * The RPM tools Lenix drives on the host (trusted inputs only: signed or checked packages, its own metadata):
 * createrepo_c, modifyrepo_c, rpmsign and rpmkeys. Package code never runs here; what builds and tests
 * packages runs in the sandbox (sandbox.ts), where rpmbuild, rpmlint and dnf live.
 */

/** Repository metadata for a folder of packages (repodata/ with sha256 checksums, gzip, no sqlite). */
export async function createrepo(dir: string, opts: { compress?: 'gz'; simpleNames?: boolean } = {}): Promise<void> {
  const args = ['--quiet', '--no-database'];
  if (opts.compress) args.push(`--general-compress-type=${opts.compress}`, '--checksum=sha256');
  if (opts.simpleNames) args.push('--simple-md-filenames');
  await run('createrepo_c', [...args, dir], BIG);
}

/** Add an updateinfo.xml to a repository's metadata (rewrites repomd.xml, so it goes in before signing). */
export async function addUpdateinfo(file: string, repodata: string): Promise<void> {
  await run('modifyrepo_c', ['--mdtype=updateinfo', '--compress-type=gz', '--checksum=sha256', file, repodata], BIG);
}

/**
 * Sign packages in place with one rpmsign run: a v4 header signature plus the v3 header+payload signature
 * (--rpmv3), which OpenSCAP before 1.3.11 needs to read the key id. Rejects with rpmsign's stderr.
 */
export async function rpmsign(
  files: readonly string[],
  key: { fingerprint: string; gnupgHome: string },
): Promise<void> {
  const args = [
    '--addsign',
    '--rpmv3',
    '--define',
    `_gpg_name ${key.fingerprint}`,
    '--define',
    '__gpg /usr/bin/gpg',
    '--define',
    `_gpg_path ${key.gnupgHome}`,
    ...files,
  ];
  await run('rpmsign', args, { env: { ...process.env, GNUPGHOME: key.gnupgHome }, ...BIG });
}

/** An rpm database that knows only `publicKey`, made once in this process (the server checks every signed upload). */
async function keyDatabase(publicKey: string): Promise<string> {
  const dir = await keyFolder('rpmkeys', publicKey, async (d) => {
    await writeFile(path.join(d, 'key.asc'), publicKey);
    await run('rpmkeys', ['--dbpath', path.join(d, 'db'), '--import', path.join(d, 'key.asc')]);
  });
  return path.join(dir, 'db');
}

/**
 * `rpmkeys -K` on packages against one public key, in a private rpm database that knows only that key: one run
 * for all of them, its output cut at each `FILE:` line it starts a package with (the files are named by the caller).
 */
export async function rpmCheckSignatures(publicKey: string, files: readonly string[]): Promise<Map<string, string>> {
  const db = await keyDatabase(publicKey);
  const results = new Map<string, string>();
  if (files.length === 0) return results;
  const { stdout } = await run('rpmkeys', ['--dbpath', db, '-Kv', ...files]).catch((e: { stdout?: string }) => ({
    stdout: e.stdout ?? '',
  }));
  // Where each file's part starts: a line `FILE:`, in the order the files were given.
  const starts: number[] = [];
  let from = 0;
  for (const f of files) {
    let start = from;
    if (!stdout.startsWith(`${f}:`, from)) {
      const nl = stdout.indexOf(`\n${f}:`, from);
      start = nl < 0 ? -1 : nl + 1;
    }
    starts.push(start);
    if (start >= 0) from = start + f.length + 1;
  }
  for (const [i, f] of files.entries()) {
    const start = starts[i]!;
    const end = starts.slice(i + 1).find((s) => s >= 0) ?? stdout.length;
    // A file rpmkeys said nothing of gets no output: its check fails.
    results.set(f, start < 0 ? 'failed' : stdout.slice(start, end));
  }
  return results;
}

/** True when rpmkeys -Kv shows a good header signature and a good header+payload (v3) signature. */
export function bothSignaturesOk(rpmkeysOutput: string): boolean {
  const lines = rpmkeysOutput.split('\n').map((l) => l.trim());
  const header = lines.some((l) => /^Header V4 \S+ Signature, key ID [0-9a-f]+: OK$/.test(l));
  const v3 = lines.some((l) => /^V4 \S+ Signature, key ID [0-9a-f]+: OK$/.test(l));
  return header && v3 && !lines.some((l) => /: (BAD|NOKEY|NOTTRUSTED)/.test(l));
}

/** What `rpmkeys -Kv` says of a package to be imported, against the key it should be signed with (or none). */
export type ImportSignature =
  | { readonly kind: 'signed' }
  | { readonly kind: 'unsigned' }
  | { readonly kind: 'refused'; readonly why: string };

/**
 * Check a package for import: its digests must verify (a flipped byte anywhere fails them), and it must be signed
 * with `publicKey` (header signature OK, no other signature failing), or, with no key, carry no signature at all.
 */
export async function checkImportSignature(file: string, publicKey: string | null): Promise<ImportSignature> {
  const out = await withTempHome(async (dir) => {
    const db = path.join(dir, 'db');
    if (publicKey) {
      await writeFile(path.join(dir, 'key.asc'), publicKey);
      await run('rpmkeys', ['--dbpath', db, '--import', path.join(dir, 'key.asc')]);
    }
    const { stdout } = await run('rpmkeys', ['--dbpath', db, '-Kv', file]).catch((e: { stdout?: string }) => ({
      stdout: e.stdout ?? '',
    }));
    return stdout;
  });
  const lines = out
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const bad = lines.find((l) => /: (BAD|NOTFOUND)/.test(l));
  if (bad || !lines.some((l) => /digest: OK$/.test(l)))
    return { kind: 'refused', why: `the package does not verify (${bad ?? 'no digest'})` };
  const signatures = lines.filter((l) => /Signature, key ID/.test(l));
  if (signatures.length === 0)
    return publicKey ? { kind: 'refused', why: 'the package is not signed' } : { kind: 'unsigned' };
  const failing = signatures.find((l) => !/: OK$/.test(l));
  if (!publicKey)
    return { kind: 'refused', why: `the package is signed (${signatures[0]}): give the key it is signed with` };
  if (failing) return { kind: 'refused', why: `not signed with the given key (${failing})` };
  if (!signatures.some((l) => /^Header V4 \S+ Signature, key ID [0-9a-f]+: OK$/.test(l)))
    return { kind: 'refused', why: 'no header signature by the given key' };
  return { kind: 'signed' };
}
