import { LenixError } from './errors.js';

/**
 * A branded primitive: a string or number that only a parser hands out, so an unchecked value cannot be
 * passed where a checked one is needed. Used for digests (every blob-store and artifact read takes a Sha256
 * that came through parseSha256 or a hash); numeric ids stay plain numbers, checked by zod at the edge.
 */
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

export type Sha256 = Brand<string, 'Sha256'>;

const SHA256_RE = /^[0-9a-f]{64}$/;

export function parseSha256(value: unknown): Sha256 {
  if (typeof value !== 'string' || !SHA256_RE.test(value)) {
    throw new LenixError('INVALID_DIGEST', 'expected a SHA-256 digest: 64 lowercase hex characters');
  }
  return value as Sha256;
}

export function isSha256(value: unknown): value is Sha256 {
  return typeof value === 'string' && SHA256_RE.test(value);
}

const NAME_MAX = 255;
/** True when the text holds a C0 control character (U+0000–U+001F) or DEL: never part of a name, ref or URL. */
export function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * A plain file or object name: no path separators, no `.`/`..`, no control characters, bounded length.
 * Used for artifact names, lookaside file names and source names; anything else is refused at the edge.
 */
export function parsePlainName(value: unknown, what = 'name'): string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > NAME_MAX ||
    value === '.' ||
    value === '..' ||
    value.includes('/') ||
    value.includes('\\') ||
    hasControlCharacter(value)
  ) {
    throw new LenixError('INVALID_NAME', `${what} must be a plain file name without '/', '..' or control characters`);
  }
  return value;
}

const SOURCE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;
/** Source names are package-like: letters, digits, `._+-`, starting with a letter or digit. */
export function parseSourceName(value: unknown): string {
  if (typeof value !== 'string' || !SOURCE_NAME_RE.test(value)) {
    throw new LenixError('INVALID_NAME', 'source name must match [A-Za-z0-9][A-Za-z0-9._+-]{0,99}');
  }
  return value;
}

/** Code-unit order (not the locale's): the same on every machine, for outputs that must not vary. */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A snapshot's order: by arch, then file name (code units: the same on every machine). */
export function byArchAndName(a: { arch: string; name: string }, b: { arch: string; name: string }): number {
  return byCodeUnits(a.arch, b.arch) || byCodeUnits(a.name, b.name);
}
