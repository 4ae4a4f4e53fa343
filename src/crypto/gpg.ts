import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LenixError } from '../core/errors.js';
import { execText, processRuns } from '../exec/exec.js';

/** Public-key work needs no gpg-agent: none is started (one per keyring would outlive the process). */
const NO_AGENT = '--no-autostart';

/**
 * GnuPG as the OpenPGP implementation: key generation and signing in the signer's key folder, and key
 * inspection and signature checks with throwaway homes on the server. Every call names its --homedir.
 */
export interface KeyInfo {
  readonly fingerprint: string;
  readonly name: string;
  readonly algorithm: string;
}

const ALGOS: Record<string, string> = { '1': 'rsa', '17': 'dsa', '19': 'ecdsa', '22': 'eddsa' };

async function gpg(home: string, args: string[], input?: string): Promise<string> {
  const argv = ['--homedir', home, '--batch', '--no-tty', '--pinentry-mode', 'loopback', ...args];
  try {
    return (await execText('gpg', argv, { maxBuffer: 16 * 1024 * 1024, input: input ?? '' })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; code?: unknown };
    const stderr = e.stderr ?? '';
    throw Object.assign(new Error(stderr.trim().split('\n').pop() || `gpg exited ${String(e.code)}`), { stderr });
  }
}

/** A key folder with the permissions gpg insists on. */
export async function ensureHome(home: string): Promise<void> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  await chmod(home, 0o700);
}

export async function generateKey(home: string, name: string, algorithm: 'rsa4096' | 'ed25519'): Promise<KeyInfo> {
  await ensureHome(home);
  await gpg(home, [
    '--passphrase',
    '',
    '--quick-gen-key',
    `${name} <${name}@lenix.invalid>`,
    algorithm,
    'sign',
    'never',
  ]);
  const keys = await listSecretKeys(home);
  const k = keys.filter((x) => x.name.startsWith(`${name} <`)).pop();
  if (!k) throw new LenixError('INTERNAL', 'gpg generated no key');
  return k;
}

function parseColons(text: string, kind: 'sec' | 'pub'): KeyInfo[] {
  const out: KeyInfo[] = [];
  let algo = '';
  let fpr = '';
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === kind) {
      algo = ALGOS[f[3] ?? ''] ?? `algo${f[3]}`;
      if (algo === 'rsa') algo = `rsa${f[2]}`;
      fpr = '';
    } else if (f[0] === 'fpr' && fpr === '') {
      fpr = f[9] ?? '';
    } else if (f[0] === 'uid' && fpr !== '' && !out.some((k) => k.fingerprint === fpr)) {
      out.push({ fingerprint: fpr, name: (f[9] ?? '').replace(/\\x3a/g, ':'), algorithm: algo });
    }
  }
  return out;
}

export async function listSecretKeys(home: string): Promise<KeyInfo[]> {
  return parseColons(await gpg(home, ['--with-colons', '--list-secret-keys']), 'sec');
}

export async function exportPublicKey(home: string, fingerprint: string): Promise<string> {
  const out = await gpg(home, ['--armor', '--export', fingerprint]);
  if (!out.includes('BEGIN PGP PUBLIC KEY BLOCK'))
    throw new LenixError('KEY_NOT_FOUND', `no key ${fingerprint} in ${home}`);
  return out;
}

/** Armored detached signature over `data` with the key `fingerprint` (SHA-256 digest). */
export async function detachSign(home: string, fingerprint: string, data: Buffer): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-sig-'));
  try {
    const file = path.join(dir, 'data');
    await writeFile(file, data);
    await gpg(home, [
      '--digest-algo',
      'SHA256',
      '--local-user',
      fingerprint,
      '--armor',
      '--detach-sign',
      '--output',
      `${file}.asc`,
      file,
    ]);
    return await readFile(`${file}.asc`, 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A private, mode-0700 folder for one gpg or rpm database use, removed afterwards. */
export async function withTempHome<T>(fn: (home: string) => Promise<T>): Promise<T> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'lenix-gpg-'));
  try {
    await chmod(home, 0o700);
    return await fn(home);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** What an armored public key is: exactly one key, its fingerprint, user id and algorithm. Hostile input fails closed. */
export async function inspectPublicKey(armored: string): Promise<KeyInfo> {
  if (
    armored.length > 64 * 1024 ||
    !armored.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----') ||
    armored.includes('PRIVATE KEY')
  ) {
    throw new LenixError('KEY_INVALID', 'expected one armored OpenPGP public key');
  }
  return withTempHome(async (home) => {
    let out: string;
    try {
      out = await gpg(home, [NO_AGENT, '--with-colons', '--import-options', 'show-only', '--import'], armored);
    } catch (err) {
      throw new LenixError('KEY_INVALID', `gpg cannot read the key: ${(err as Error).message}`, { cause: err });
    }
    const keys = parseColons(out, 'pub');
    if (keys.length !== 1) throw new LenixError('KEY_INVALID', `expected one public key, found ${keys.length}`);
    return keys[0]!;
  });
}

const perKey = new Map<string, Promise<string>>();
/** Where keyFolder makes its folders (useKeyFolderBase); the system's temporary folder until one is given. */
let folderBase: string | null = null;

/**
 * From now on keyFolder makes its folders in `DIR/key-folders` (the server's data folder, the signer's work
 * folder) instead of the system's temporary folder, each named after the process that made it; folders there of
 * processes no longer running (killed before their exit handler ran) are removed now. A folder of a process that
 * still runs is left alone, so a server shutting down keeps its own while the next one starts.
 */
export async function useKeyFolderBase(dir: string): Promise<void> {
  const base = path.join(dir, 'key-folders');
  await mkdir(base, { recursive: true, mode: 0o700 });
  for (const name of await readdir(base)) {
    const pid = Number(/^(\d+)-/.exec(name)?.[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || processRuns(pid)) continue;
    await rm(path.join(base, name), { recursive: true, force: true });
  }
  folderBase = base;
}

/**
 * A private folder for one public key (by its text) and one use, made and filled once in this process and
 * removed when it exits, such as an rpm database that knows only that key. Checking a signature is
 * then one process start rather than an import and a check (each start costs a loaded 2-core machine 10–30 ms).
 */
export async function keyFolder(use: string, publicKey: string, fill: (dir: string) => Promise<void>): Promise<string> {
  const id = `${use}:${createHash('sha256').update(publicKey).digest('hex')}`;
  const known = perKey.get(id);
  if (known) {
    // A folder removed while this process runs (its data folder deleted under it) is made again.
    const dir = await known.catch(() => null);
    if (dir !== null && existsSync(dir)) return dir;
    if (perKey.get(id) === known) perKey.delete(id);
  }
  let folder = perKey.get(id);
  if (!folder) {
    folder = (async () => {
      const dir = await mkdtemp(
        folderBase ? path.join(folderBase, `${process.pid}-${use}-`) : path.join(os.tmpdir(), `lenix-${use}-`),
      );
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
      await chmod(dir, 0o700);
      await fill(dir);
      return dir;
    })();
    folder.catch(() => perKey.delete(id));
    perKey.set(id, folder);
  }
  return folder;
}
