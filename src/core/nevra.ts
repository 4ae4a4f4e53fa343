import { LenixError } from './errors.js';
import type { Brand } from './ids.js';

/** A package's name, epoch, version, release and architecture, as rpm reports them. */
export interface Nevra {
  readonly name: string;
  readonly epoch: number | null;
  readonly version: string;
  readonly release: string;
  readonly arch: string;
}

export type NevraString = Brand<string, 'NevraString'>;

/** `name-[epoch:]version-release.arch`, the form `rpm -q` prints (epoch only when set). */
export function formatNevra(n: Nevra): NevraString {
  const epoch = n.epoch === null || n.epoch === 0 ? '' : `${n.epoch}:`;
  return `${n.name}-${epoch}${n.version}-${n.release}.${n.arch}` as NevraString;
}

/** Parse `name-[epoch:]version-release.arch`. Names may contain dashes; version and release may not. */
export function parseNevra(text: string): Nevra {
  const m = /^(.+)-(?:(\d+):)?([^-:]+)-([^-:]+)\.([A-Za-z0-9_]+)$/.exec(text);
  if (!m) throw new LenixError('BAD_REQUEST', `not a NEVRA: ${text.slice(0, 200)}`);
  return { name: m[1]!, epoch: m[2] === undefined ? null : Number(m[2]), version: m[3]!, release: m[4]!, arch: m[5]! };
}

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isAlpha = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
const isAlnum = (c: string): boolean => isDigit(c) || isAlpha(c);

/**
 * rpm's version segment comparison (rpmvercmp, lib/rpmvercmp.c): split into runs of digits and letters,
 * `~` sorts before everything (even the end), `^` sorts after the end but before anything else,
 * numeric runs beat alphabetic ones, numbers compare by value.
 */
export function rpmvercmp(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(a[i]!) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !isAlnum(b[j]!) && b[j] !== '~' && b[j] !== '^') j++;

    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++;
      j++;
      continue;
    }
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (!(i < a.length && j < b.length)) break;

    const numeric = isDigit(a[i]!);
    const take = numeric ? isDigit : isAlpha;
    let ie = i;
    while (ie < a.length && take(a[ie]!)) ie++;
    let je = j;
    while (je < b.length && take(b[je]!)) je++;
    let sa = a.slice(i, ie);
    let sb = b.slice(j, je);
    if (sb.length === 0) return numeric ? 1 : -1; // segments of different kinds: numeric is newer
    if (numeric) {
      sa = sa.replace(/^0+/, '');
      sb = sb.replace(/^0+/, '');
      if (sa.length !== sb.length) return sa.length > sb.length ? 1 : -1;
    }
    if (sa !== sb) return sa < sb ? -1 : 1;
    i = ie;
    j = je;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

/** Compare epoch:version-release the way rpm does (a missing epoch is 0). */
export function compareEvr(
  a: Pick<Nevra, 'epoch' | 'version' | 'release'>,
  b: Pick<Nevra, 'epoch' | 'version' | 'release'>,
): -1 | 0 | 1 {
  const ea = a.epoch ?? 0;
  const eb = b.epoch ?? 0;
  if (ea !== eb) return ea < eb ? -1 : 1;
  return rpmvercmp(a.version, b.version) || rpmvercmp(a.release, b.release);
}
