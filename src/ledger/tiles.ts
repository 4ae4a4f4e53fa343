import { LenixError } from '../core/errors.js';
import { HASH_SIZE, type Hash } from './merkle.js';

/**
 * C2SP tlog-tiles (https://c2sp.org/tlog-tiles): the tree's hashes cut into tiles of height 8 (256 hashes),
 * served as static files so a log can be mirrored with plain HTTP caches. A tile at level L, index N holds
 * the hashes of level 8·L (leaf hashes for L = 0), positions 256·N …; a partial tile (the right edge) has
 * width W < 256 and the path suffix `.p/W`. Entry bundles hold the log entries themselves, each prefixed
 * with its length as a big-endian uint16.
 */
export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;
export const MAX_ENTRY_SIZE = 0xffff;

/** N encoded as path elements of three digits, all but the last prefixed "x" (tlog-tiles §"Tile paths"). */
export function encodeIndex(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('tile index must be a non-negative integer');
  const groups: string[] = [];
  let rest = n;
  do {
    groups.unshift(String(rest % 1000).padStart(3, '0'));
    rest = Math.floor(rest / 1000);
  } while (rest > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

export function decodeIndex(path: string): number {
  const parts = path.split('/');
  let n = 0;
  parts.forEach((p, i) => {
    const last = i === parts.length - 1;
    const m = (last ? /^(\d{3})$/ : /^x(\d{3})$/).exec(p);
    if (!m) throw new LenixError('NOT_FOUND', `not a tile index: ${path.slice(0, 60)}`);
    n = n * 1000 + Number(m[1]);
  });
  if (!Number.isSafeInteger(n)) throw new LenixError('NOT_FOUND', 'tile index too large');
  return n;
}

export interface TileRef {
  readonly level: number | 'entries';
  readonly index: number;
  readonly width: number; // 1..256; 256 is a full tile
}

export function tilePath(t: TileRef): string {
  const base =
    t.level === 'entries' ? `tile/entries/${encodeIndex(t.index)}` : `tile/${t.level}/${encodeIndex(t.index)}`;
  return t.width === TILE_WIDTH ? base : `${base}.p/${t.width}`;
}

/** Parse `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`. */
export function parseTilePath(path: string): TileRef {
  const m = /^tile\/(entries|\d{1,2})\/((?:x\d{3}\/)*\d{3})(?:\.p\/(\d{1,3}))?$/.exec(path);
  if (!m) throw new LenixError('NOT_FOUND', `not a tile path: ${path.slice(0, 80)}`);
  const width = m[3] === undefined ? TILE_WIDTH : Number(m[3]);
  if (m[3] !== undefined && (width < 1 || width > 255 || String(width) !== m[3]))
    throw new LenixError('NOT_FOUND', 'partial tile width must be 1..255');
  return { level: m[1] === 'entries' ? 'entries' : Number(m[1]), index: decodeIndex(m[2]!), width };
}

/** How many hashes of level 8·L exist in a tree of `size` leaves. */
export function hashesAtTileLevel(size: number, level: number): number {
  return Math.floor(size / 2 ** (TILE_HEIGHT * level));
}

/** The width of tile (L, N) in a tree of `size` leaves (0 when it does not exist yet). */
export function tileWidth(size: number, level: number | 'entries', index: number): number {
  const count = level === 'entries' ? size : hashesAtTileLevel(size, level);
  return Math.max(0, Math.min(TILE_WIDTH, count - index * TILE_WIDTH));
}

export function encodeHashTile(hashes: readonly Hash[]): Uint8Array {
  const out = new Uint8Array(hashes.length * HASH_SIZE);
  for (const [i, h] of hashes.entries()) out.set(h, i * HASH_SIZE);
  return out;
}

export function encodeEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  const size = entries.reduce((n, e) => n + 2 + e.length, 0);
  const out = new Uint8Array(size);
  let at = 0;
  for (const e of entries) {
    if (e.length > MAX_ENTRY_SIZE)
      throw new LenixError('BAD_REQUEST', `a log entry holds at most ${MAX_ENTRY_SIZE} bytes`);
    out[at] = e.length >> 8;
    out[at + 1] = e.length & 0xff;
    out.set(e, at + 2);
    at += 2 + e.length;
  }
  return out;
}

export function decodeEntryBundle(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 2 > bytes.length) throw new LenixError('SIGNATURE_INVALID', 'truncated entry bundle');
    const len = (bytes[at]! << 8) | bytes[at + 1]!;
    if (at + 2 + len > bytes.length) throw new LenixError('SIGNATURE_INVALID', 'truncated entry bundle');
    out.push(bytes.slice(at + 2, at + 2 + len));
    at += 2 + len;
  }
  return out;
}
