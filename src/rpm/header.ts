import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { LenixError } from '../core/errors.js';
import type { HeaderDigests } from '../core/header-digests.js';

export type { HeaderDigests };

/**
 * An RPM file's lead, signature header and main header (rpm's lib/header.c and the LSB "Package File
 * Format"). Only the header is read, never the payload; every length is bounds-checked, so a hostile file
 * gets NOT_AN_RPM rather than a crash or a huge allocation.
 */
export const TAG = {
  NAME: 1000,
  VERSION: 1001,
  RELEASE: 1002,
  EPOCH: 1003,
  SUMMARY: 1004,
  BUILDTIME: 1006,
  BUILDHOST: 1007,
  SIZE: 1009,
  LICENSE: 1014,
  URL: 1020,
  ARCH: 1022,
  SOURCERPM: 1044,
  PROVIDENAME: 1047,
  REQUIREFLAGS: 1048,
  REQUIRENAME: 1049,
  REQUIREVERSION: 1050,
  EXCLUDEARCH: 1059,
  EXCLUSIVEARCH: 1061,
  BUILDARCHS: 1089,
  SOURCEPACKAGE: 1106,
  VENDOR: 1011,
  PAYLOADDIGEST: 5092,
  PAYLOADDIGESTALGO: 5093,
} as const;

/** Signature-header tags rpm checks the main header against (rpm's RPMSIGTAG_SHA1 and RPMSIGTAG_SHA256). */
const SIG_SHA1 = 269;
const SIG_SHA256 = 273;
/** rpm's PGPHASHALGO numbers, as PAYLOADDIGESTALGO holds them. */
const HASH_ALGOS: Readonly<Record<number, string>> = { 1: 'md5', 2: 'sha1', 8: 'sha256', 9: 'sha384', 10: 'sha512' };

const LEAD_SIZE = 96;
const LEAD_MAGIC = 0xedabeedb;
const HEADER_MAGIC = 0x8eade801;
const MAX_INDEX = 0xffff;
const MAX_STORE = 256 * 1024 * 1024;

type Value = string | string[] | number[] | Uint8Array;

export interface RpmHeader {
  readonly tags: ReadonlyMap<number, Value>;
  /** The signature header's tags (digests and signatures over the main header and payload). */
  readonly signature: ReadonlyMap<number, Value>;
  /** The main header's bytes, as rpm digests them (SHA256HEADER, SHA1HEADER). */
  readonly mainHeader: Uint8Array;
  /** Bytes from the start of the file to the end of the main header (the payload starts there). */
  readonly headerEnd: number;
}

function fail(why: string): never {
  throw new LenixError('NOT_AN_RPM', `not an RPM package: ${why}`);
}

/** The size of a header structure at `at` (16-byte preamble + index + store), from its preamble. */
function structureSize(buf: Uint8Array, at: number): number {
  if (buf.length < at + 16) fail('truncated header preamble');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint32(at) !== HEADER_MAGIC) fail('bad header magic');
  const nindex = view.getUint32(at + 8);
  const hsize = view.getUint32(at + 12);
  if (nindex > MAX_INDEX || hsize > MAX_STORE) fail('header too large');
  return 16 + nindex * 16 + hsize;
}

/** How many leading bytes of the file the parser needs, given what has been read so far; null if enough. */
export function bytesNeeded(prefix: Uint8Array): number | null {
  if (prefix.length < LEAD_SIZE + 16) return LEAD_SIZE + 16;
  const sigSize = structureSize(prefix, LEAD_SIZE);
  const mainAt = LEAD_SIZE + sigSize + ((8 - (sigSize % 8)) % 8);
  if (prefix.length < mainAt + 16) return mainAt + 16;
  const end = mainAt + structureSize(prefix, mainAt);
  return prefix.length < end ? end : null;
}

export function parseRpmHeader(buf: Uint8Array): RpmHeader {
  if (buf.length < LEAD_SIZE) fail('shorter than the lead');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint32(0) !== LEAD_MAGIC) fail('bad lead magic');
  const sigSize = structureSize(buf, LEAD_SIZE);
  const mainAt = LEAD_SIZE + sigSize + ((8 - (sigSize % 8)) % 8);
  const mainSize = structureSize(buf, mainAt);
  if (buf.length < mainAt + mainSize) fail('truncated main header');
  return {
    tags: readStructure(buf, view, mainAt),
    signature: readStructure(buf, view, LEAD_SIZE),
    mainHeader: buf.subarray(mainAt, mainAt + mainSize),
    headerEnd: mainAt + mainSize,
  };
}

/**
 * A package's header digests (core/header-digests.ts): SHA-256 and SHA-1 computed over the main header here,
 * and checked against what the signature header records; the payload digest as the header carries it.
 */
export function headerDigests(h: RpmHeader): HeaderDigests {
  const sha256 = createHash('sha256').update(h.mainHeader).digest('hex');
  const sha1 = createHash('sha1').update(h.mainHeader).digest('hex');
  const recorded256 = h.signature.get(SIG_SHA256);
  const recorded1 = h.signature.get(SIG_SHA1);
  if (
    (typeof recorded256 === 'string' && recorded256 !== sha256) ||
    (typeof recorded1 === 'string' && recorded1 !== sha1)
  )
    fail('the header digest in the signature header does not match the header');
  const algo = HASH_ALGOS[num(h, TAG.PAYLOADDIGESTALGO) ?? 8];
  const payload = str(h, TAG.PAYLOADDIGEST);
  return { sha256, sha1, payload: payload && algo ? `${algo}:${payload}` : null };
}

function readStructure(buf: Uint8Array, view: DataView, at: number): Map<number, Value> {
  const nindex = view.getUint32(at + 8);
  const hsize = view.getUint32(at + 12);
  const store = at + 16 + nindex * 16;
  const end = store + hsize;
  const tags = new Map<number, Value>();
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const cstring = (from: number): [string, number] => {
    let i = from;
    while (i < end && buf[i] !== 0) i++;
    if (i >= end) fail('unterminated string');
    return [decoder.decode(buf.subarray(from, i)), i + 1];
  };
  for (let k = 0; k < nindex; k++) {
    const e = at + 16 + k * 16;
    const tag = view.getUint32(e);
    const type = view.getUint32(e + 4);
    const offset = view.getInt32(e + 8);
    const count = view.getUint32(e + 12);
    if (offset < 0 || store + offset > end || count > MAX_STORE) fail('index entry out of bounds');
    const p = store + offset;
    switch (type) {
      case 6: // STRING
        tags.set(tag, cstring(p)[0]);
        break;
      case 8: // STRING_ARRAY
      case 9: {
        // I18NSTRING: the first string is the C locale's
        const out: string[] = [];
        let q = p;
        for (let n = 0; n < count; n++) {
          const [s, next] = cstring(q);
          out.push(s);
          q = next;
        }
        tags.set(tag, type === 9 ? [out[0] ?? ''] : out);
        break;
      }
      case 2:
      case 3:
      case 4: {
        const width = type === 2 ? 1 : type === 3 ? 2 : 4;
        if (p + width * count > end) fail('integer array out of bounds');
        const out: number[] = [];
        for (let n = 0; n < count; n++) {
          out.push(
            width === 1 ? view.getUint8(p + n) : width === 2 ? view.getUint16(p + 2 * n) : view.getUint32(p + 4 * n),
          );
        }
        tags.set(tag, out);
        break;
      }
      case 5: {
        if (p + 8 * count > end) fail('integer array out of bounds');
        const out: number[] = [];
        for (let n = 0; n < count; n++) out.push(Number(view.getBigUint64(p + 8 * n)));
        tags.set(tag, out);
        break;
      }
      case 7: // BIN
        if (p + count > end) fail('binary value out of bounds');
        tags.set(tag, buf.subarray(p, p + count));
        break;
      default:
        break; // NULL, CHAR: not needed
    }
  }
  return tags;
}

export function str(h: RpmHeader, tag: number): string | null {
  const v = h.tags.get(tag);
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  return null;
}

export function strings(h: RpmHeader, tag: number): string[] {
  const v = h.tags.get(tag);
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

function numbers(h: RpmHeader, tag: number): number[] {
  const v = h.tags.get(tag);
  return Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : [];
}

/** rpm's RPMSENSE_LESS, _GREATER and _EQUAL bits of a dependency's flags. */
const SENSE_LESS = 0x02;
const SENSE_GREATER = 0x04;
const SENSE_EQUAL = 0x08;

/**
 * A package's Requires as rpm and dnf write them (`name`, `name >= 1.2`), rpmlib() features left out. For a
 * source package these are its BuildRequires.
 */
export function requirements(h: RpmHeader): string[] {
  const names = strings(h, TAG.REQUIRENAME);
  const flags = numbers(h, TAG.REQUIREFLAGS);
  const versions = strings(h, TAG.REQUIREVERSION);
  const out = new Set<string>();
  names.forEach((name, i) => {
    if (name.startsWith('rpmlib(')) return;
    const f = flags[i] ?? 0;
    const op = `${f & SENSE_LESS ? '<' : ''}${f & SENSE_GREATER ? '>' : ''}${f & SENSE_EQUAL ? '=' : ''}`;
    const version = versions[i] ?? '';
    out.add(op && version ? `${name} ${op} ${version}` : name);
  });
  return [...out];
}

/** Whether a source package was made from a spec with %generate_buildrequires (rpm marks it with an rpmlib() feature). */
export function hasDynamicBuildRequires(h: RpmHeader): boolean {
  return strings(h, TAG.REQUIRENAME).includes('rpmlib(DynamicBuildRequires)');
}

export function num(h: RpmHeader, tag: number): number | null {
  const v = h.tags.get(tag);
  return Array.isArray(v) && typeof v[0] === 'number' ? v[0] : null;
}

export interface PackageInfo {
  readonly name: string;
  readonly epoch: number | null;
  readonly version: string;
  readonly release: string;
  /** `src` for source packages (rpm reports the build arch in ARCH; SOURCEPACKAGE marks them). */
  readonly arch: string;
  readonly isSource: boolean;
  readonly sourceRpm: string | null;
  readonly buildArchs: readonly string[];
  readonly exclusiveArch: readonly string[];
  readonly excludeArch: readonly string[];
}

export function packageInfo(h: RpmHeader): PackageInfo {
  const name = str(h, TAG.NAME);
  const version = str(h, TAG.VERSION);
  const release = str(h, TAG.RELEASE);
  if (!name || !version || !release) fail('header lacks name, version or release');
  const isSource = h.tags.has(TAG.SOURCEPACKAGE) || str(h, TAG.SOURCERPM) === null;
  return {
    name,
    epoch: num(h, TAG.EPOCH),
    version,
    release,
    arch: isSource ? 'src' : (str(h, TAG.ARCH) ?? 'noarch'),
    isSource,
    sourceRpm: str(h, TAG.SOURCERPM),
    buildArchs: strings(h, TAG.BUILDARCHS),
    exclusiveArch: strings(h, TAG.EXCLUSIVEARCH),
    excludeArch: strings(h, TAG.EXCLUDEARCH),
  };
}

/** Read just the header from a stream of an RPM file (e.g. a blob); the rest of the stream is not read. */
export async function readRpmStreamHeader(
  stream: AsyncIterable<Uint8Array> & { destroy?(): void },
): Promise<RpmHeader> {
  let buf: Uint8Array = new Uint8Array(0);
  try {
    for await (const chunk of stream) {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (bytesNeeded(buf) === null) return parseRpmHeader(buf);
    }
  } finally {
    stream.destroy?.();
  }
  fail('truncated file');
}

/** Read just the header of an RPM file on disk. */
export async function readRpmFileHeader(file: string): Promise<RpmHeader> {
  const h = await open(file, 'r');
  try {
    let buf: Uint8Array = new Uint8Array(0);
    for (;;) {
      const need = bytesNeeded(buf);
      if (need === null) return parseRpmHeader(buf);
      const next = new Uint8Array(need);
      next.set(buf);
      const { bytesRead } = await h.read(next, buf.length, need - buf.length, buf.length);
      if (bytesRead < need - buf.length) fail('truncated file');
      buf = next;
    }
  } finally {
    await h.close();
  }
}
