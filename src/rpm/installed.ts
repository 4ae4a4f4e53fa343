import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { LenixError } from '../core/errors.js';

const run = promisify(execFile);

/** What a machine's rpm database keeps of one installed package (`rpm -qa` with the header digests). */
export interface InstalledPackage {
  readonly name: string;
  readonly epoch: number | null;
  readonly version: string;
  readonly release: string;
  readonly arch: string;
  /** SHA256HEADER and SHA1HEADER: the digests of the header as it was signed; null for very old packages. */
  readonly headerSha256: string | null;
  readonly headerSha1: string | null;
  /** `ALGO:HEX` (PAYLOADDIGEST), null when the package has none. */
  readonly payloadDigest: string | null;
  /** The short key id of its header signature (`Key ID` of rpm's pgpsig), null when unsigned. */
  readonly signatureKeyId: string | null;
  readonly installTime: number;
  readonly sourceRpm: string | null;
  readonly license: string | null;
  readonly summary: string | null;
  readonly url: string | null;
  readonly vendor: string | null;
}

/** rpm's PGPHASHALGO numbers. */
const HASH_ALGOS: Readonly<Record<string, string>> = {
  '1': 'md5',
  '2': 'sha1',
  '8': 'sha256',
  '9': 'sha384',
  '10': 'sha512',
};

const FIELDS = [
  'NAME',
  'EPOCH',
  'VERSION',
  'RELEASE',
  'ARCH',
  'SHA256HEADER',
  'SHA1HEADER',
  'PAYLOADDIGEST',
  'PAYLOADDIGESTALGO',
  // The header signature: DSA or RSA/EdDSA (rpm keeps both kinds of OpenPGP header signatures in these tags).
  'SIG',
  'INSTALLTIME',
  'SOURCERPM',
  'LICENSE',
  'SUMMARY',
  'URL',
  'VENDOR',
] as const;

const field = (f: (typeof FIELDS)[number]) =>
  f === 'SIG' ? '%|DSAHEADER?{%{DSAHEADER:pgpsig}}:{%|RSAHEADER?{%{RSAHEADER:pgpsig}}:{(none)}|}|' : `%{${f}}`;

const orNull = (v: string | undefined) => (v === undefined || v === '(none)' || v === '' ? null : v);

/**
 * The packages installed under `root` (`/` for this machine), optionally only those named, sorted by name, EVR
 * and arch. Fields are separated by a random marker made for this run, so no package's text can forge a field.
 */
export async function readInstalled(root: string, names: readonly string[] = []): Promise<InstalledPackage[]> {
  const odd = names.find((n) => !/^[A-Za-z0-9_+][A-Za-z0-9._+-]*$/.test(n));
  if (odd !== undefined) throw new LenixError('BAD_REQUEST', `not a package name: ${odd.slice(0, 100)}`);
  // rpm reads an empty database where there is none: say so rather than report an empty machine.
  const db = (await run('rpm', ['--root', root, '--eval', '%{_dbpath}'])).stdout.trim();
  if (!(await stat(path.join(root, db)).catch(() => null))?.isDirectory())
    throw new LenixError('NOT_FOUND', `no rpm database under ${root} (${path.join(root, db)})`);
  const mark = `@${randomBytes(12).toString('hex')}@`;
  const qf = `${FIELDS.map(field).join(mark)}${mark}\n`;
  let stdout: string;
  try {
    ({ stdout } = await run('rpm', ['--root', root, ...(names.length > 0 ? ['-q'] : ['-qa']), '--qf', qf, ...names], {
      maxBuffer: 256 * 1024 * 1024,
    }));
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    // `rpm -q NAME` exits 1 for a name that is not installed; say which.
    const missing = (e.stdout ?? '').split('\n').filter((l) => /^package \S+ is not installed$/.test(l));
    if (missing.length > 0) throw new LenixError('NOT_FOUND', missing.join('; '));
    throw new LenixError('BAD_REQUEST', `cannot read the rpm database under ${root}: ${firstLine(e.stderr)}`);
  }
  const out: InstalledPackage[] = [];
  for (const record of stdout.split(`${mark}\n`)) {
    if (record.trim() === '') continue;
    const v = record.split(mark);
    if (v.length !== FIELDS.length) throw new LenixError('BAD_REQUEST', 'rpm printed a record Lenix cannot read');
    const get = (f: (typeof FIELDS)[number]) => v[FIELDS.indexOf(f)];
    // The OpenPGP keys rpm imported (dnf's gpgkey=) are kept as gpg-pubkey headers: keys, not packages.
    if (get('NAME') === 'gpg-pubkey') continue;
    const payload = orNull(get('PAYLOADDIGEST'));
    const algo = HASH_ALGOS[get('PAYLOADDIGESTALGO') ?? ''] ?? 'sha256';
    const epoch = orNull(get('EPOCH'));
    out.push({
      name: get('NAME') ?? '',
      epoch: epoch === null ? null : Number(epoch),
      version: get('VERSION') ?? '',
      release: get('RELEASE') ?? '',
      arch: orNull(get('ARCH')) ?? 'noarch',
      headerSha256: orNull(get('SHA256HEADER')),
      headerSha1: orNull(get('SHA1HEADER')),
      payloadDigest: payload ? `${algo}:${payload}` : null,
      signatureKeyId: /Key ID ([0-9a-f]{8,40})/i.exec(get('SIG') ?? '')?.[1]?.toLowerCase() ?? null,
      installTime: Number(get('INSTALLTIME') ?? 0),
      sourceRpm: orNull(get('SOURCERPM')),
      license: orNull(get('LICENSE')),
      summary: orNull(get('SUMMARY')),
      url: orNull(get('URL')),
      vendor: orNull(get('VENDOR')),
    });
  }
  return out.sort(
    (a, b) =>
      cmp(a.name, b.name) ||
      cmp(String(a.epoch ?? 0), String(b.epoch ?? 0)) ||
      cmp(a.version, b.version) ||
      cmp(a.release, b.release) ||
      cmp(a.arch, b.arch),
  );
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const firstLine = (s: string | undefined) =>
  (s ?? '')
    .split('\n')
    .find((l) => l.trim() !== '')
    ?.slice(0, 300) ?? '';

/** `NAME-[EPOCH:]VERSION-RELEASE.ARCH`, as rpm takes it on the command line. */
export const installedNevra = (p: InstalledPackage) =>
  `${p.name}-${p.epoch !== null ? `${p.epoch}:` : ''}${p.version}-${p.release}.${p.arch}`;

/** One file `rpm -V` found changed since install. */
export interface ChangedFile {
  readonly path: string;
  /** rpm's verify flags (`S.5....T.`), or `missing`. */
  readonly flags: string;
  /** A %config file: an administrator's edit, reported but not a failure. */
  readonly config: boolean;
}

/**
 * Files of an installed package changed since it was installed: `rpm -V`, without its %verifyscript (package code:
 * never run by a verifier) or dependency checks. A change of only the modification time is not a change of content.
 */
export async function changedFiles(root: string, p: InstalledPackage): Promise<ChangedFile[]> {
  let stdout: string;
  try {
    ({ stdout } = await run('rpm', ['--root', root, '-V', '--nodeps', '--noscripts', installedNevra(p)], {
      maxBuffer: 64 * 1024 * 1024,
    }));
  } catch (err) {
    // rpm -V exits 1 when it found changes; its findings are on standard output.
    const e = err as { stdout?: string; stderr?: string };
    if (e.stdout === undefined || (e.stdout === '' && e.stderr)) {
      throw new LenixError('BAD_REQUEST', `rpm -V ${installedNevra(p)}: ${firstLine(e.stderr)}`);
    }
    stdout = e.stdout;
  }
  const out: ChangedFile[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(missing|[.?SM5DLUGTP]{9})\s+([cdglra])?\s*(\/.*)$/.exec(line);
    if (!m) continue;
    const flags = m[1]!;
    if (flags !== 'missing' && !/[SM5DLUGP?]/.test(flags)) continue;
    out.push({ path: m[3]!, flags, config: m[2] === 'c' });
  }
  return out;
}
