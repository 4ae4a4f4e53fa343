import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { LenixError } from '../core/errors.js';
import { isX86Level, levelOf } from './x86-levels.js';

/**
 * The arch truth check (issue 17): every executable and shared library in a binary RPM must be an ELF file of
 * the RPM's architecture — machine, class and byte order. `rpmbuild --target aarch64` of a spec that calls the
 * host's `gcc` happily packages an x86-64 binary as `.aarch64.rpm`; this catches it after every build.
 *
 * Only ET_EXEC and ET_DYN files are judged: relocatable objects (kernel modules, BPF programs, .o files in
 * -devel packages) may legitimately be for another machine (BPF is EM_BPF), and noarch packages are not judged
 * at all (firmware for other processors is noarch). The payload is read as rpm2cpio writes it (newc cpio),
 * keeping only the first 20 bytes of each regular file.
 */

export interface ElfIdentity {
  readonly bits: 32 | 64;
  readonly endian: 'little' | 'big';
  readonly machine: number;
}

const EM = { I386: 3, PPC64: 21, S390: 22, X86_64: 62, AARCH64: 183, RISCV: 243 } as const;
const x86_64: ElfIdentity = { bits: 64, endian: 'little', machine: EM.X86_64 };

/** What ELF an RPM arch's binaries are. x86-64 levels are x86-64 code (their ISA note says which level). */
export const ELF_OF_ARCH: Readonly<Record<string, ElfIdentity>> = {
  x86_64,
  x86_64_v2: x86_64,
  x86_64_v3: x86_64,
  x86_64_v4: x86_64,
  i686: { bits: 32, endian: 'little', machine: EM.I386 },
  aarch64: { bits: 64, endian: 'little', machine: EM.AARCH64 },
  ppc64le: { bits: 64, endian: 'little', machine: EM.PPC64 },
  s390x: { bits: 64, endian: 'big', machine: EM.S390 },
  riscv64: { bits: 64, endian: 'little', machine: EM.RISCV },
};

const MACHINE_NAMES: Readonly<Record<number, string>> = {
  [EM.I386]: 'Intel 80386',
  [EM.PPC64]: 'PowerPC64',
  [EM.S390]: 'IBM S/390',
  [EM.X86_64]: 'x86-64',
  [EM.AARCH64]: 'AArch64',
  [EM.RISCV]: 'RISC-V',
};

export function describeElf(e: ElfIdentity): string {
  return `ELF ${e.bits}-bit ${e.endian === 'little' ? 'LSB' : 'MSB'} ${MACHINE_NAMES[e.machine] ?? `machine ${e.machine}`}`;
}

const ET_EXEC = 2;
const ET_DYN = 3;

/** The identity of an executable or shared object from its first 20 bytes; null for anything else. */
export function elfIdentity(head: Uint8Array): (ElfIdentity & { readonly type: number }) | null {
  if (head.length < 20 || head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) return null;
  const bits = head[4] === 1 ? 32 : head[4] === 2 ? 64 : null;
  const endian = head[5] === 1 ? 'little' : head[5] === 2 ? 'big' : null;
  if (bits === null || endian === null) return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const little = endian === 'little';
  const type = view.getUint16(16, little);
  if (type !== ET_EXEC && type !== ET_DYN) return null;
  return { bits, endian, machine: view.getUint16(18, little), type };
}

/** Pulls exact byte counts from a stream. */
class Bytes {
  private buf: Buffer = Buffer.alloc(0);
  private read = 0;
  private readonly it: AsyncIterator<Buffer>;
  constructor(
    stream: Readable,
    private readonly maxBytes: number,
  ) {
    this.it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  private async fill(n: number): Promise<void> {
    while (this.buf.length < n) {
      const r = await this.it.next();
      if (r.done) throw new LenixError('NOT_AN_RPM', 'the package payload ends in the middle of an entry');
      this.read += r.value.length;
      if (this.read > this.maxBytes)
        throw new LenixError('NOT_AN_RPM', `the package payload unpacks to more than ${this.maxBytes} bytes`);
      this.buf = this.buf.length === 0 ? r.value : Buffer.concat([this.buf, r.value]);
    }
  }

  async take(n: number): Promise<Buffer> {
    await this.fill(n);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  async skip(n: number): Promise<void> {
    while (n > 0) {
      if (this.buf.length === 0) await this.fill(1);
      const k = Math.min(n, this.buf.length);
      this.buf = this.buf.subarray(k);
      n -= k;
    }
  }
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** Each regular file of a newc cpio archive: its path and its first (up to) `keep` bytes; at most `maxBytes` read. */
export async function* cpioHeads(
  stream: Readable,
  keep = 20,
  maxBytes = Number.MAX_SAFE_INTEGER,
): AsyncGenerator<{ path: string; head: Buffer }> {
  const r = new Bytes(stream, maxBytes);
  for (;;) {
    const h = (await r.take(110)).toString('latin1');
    if (h.slice(0, 6) !== '070701' && h.slice(0, 6) !== '070702')
      throw new LenixError('NOT_AN_RPM', 'the package payload is not a newc cpio archive');
    const field = (i: number) => {
      const v = Number.parseInt(h.slice(6 + i * 8, 14 + i * 8), 16);
      if (!Number.isFinite(v)) throw new LenixError('NOT_AN_RPM', 'a cpio header field is not hexadecimal');
      return v;
    };
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    if (nameSize < 1 || nameSize > 65_536) throw new LenixError('NOT_AN_RPM', 'a cpio entry name is too long');
    const name = (await r.take(nameSize)).subarray(0, nameSize - 1).toString('utf8');
    await r.skip(pad4(110 + nameSize));
    if (name === 'TRAILER!!!') return;
    const n = Math.min(keep, size);
    const head = Buffer.from(await r.take(n));
    await r.skip(size - n + pad4(size));
    if ((mode & S_IFMT) === S_IFREG) yield { path: name.replace(/^\.\//, '/'), head };
  }
}

const PT_NOTE = 4;
const PT_GNU_PROPERTY = 0x6474e553;
const NT_GNU_PROPERTY_TYPE_0 = 5;
const GNU_PROPERTY_X86_ISA_1_NEEDED = 0xc0008002;
const align = (n: number, a: number) => (a > 1 ? Math.ceil(n / a) * a : n);

/**
 * The x86-64 levels an x86-64 executable or shared object says it needs (its GNU property note, written by
 * `gcc -mneeded`): a bit mask, 1 baseline, 2 v2, 4 v3, 8 v4; null when the bytes given hold no such note.
 */
export function x86IsaNeeded(b: Uint8Array): number | null {
  const id = elfIdentity(b);
  if (!id || id.machine !== EM.X86_64 || id.bits !== 64 || id.endian !== 'little') return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u64 = (at: number) => Number(v.getBigUint64(at, true));
  if (b.length < 64) return null;
  const phoff = u64(32);
  const phentsize = v.getUint16(54, true);
  const phnum = v.getUint16(56, true);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (phentsize < 56 || ph + 56 > b.length) break;
    const type = v.getUint32(ph, true);
    if (type !== PT_GNU_PROPERTY && type !== PT_NOTE) continue;
    const [off, size, a] = [u64(ph + 8), u64(ph + 32), u64(ph + 48) >= 8 ? 8 : 4];
    if (off + size > b.length) continue;
    for (let p = off; p + 12 <= off + size; ) {
      const [namesz, descsz, ntype] = [v.getUint32(p, true), v.getUint32(p + 4, true), v.getUint32(p + 8, true)];
      const desc = p + align(12 + namesz, a);
      if (desc + descsz > off + size) break;
      const name = Buffer.from(b.subarray(p + 12, p + 12 + namesz)).toString('latin1');
      if (ntype === NT_GNU_PROPERTY_TYPE_0 && name === 'GNU\0') {
        for (let q = desc; q + 8 <= desc + descsz; ) {
          const [prType, prSize] = [v.getUint32(q, true), v.getUint32(q + 4, true)];
          if (prType === GNU_PROPERTY_X86_ISA_1_NEEDED && prSize >= 4) return v.getUint32(q + 8, true);
          q += 8 + align(prSize, 8);
        }
      }
      p = desc + align(descsz, a);
    }
  }
  return null;
}

/** The highest level in a needed mask (1 baseline, 2…4 for v2…v4). */
const highestLevel = (mask: number) => (mask & 8 ? 4 : mask & 4 ? 3 : mask & 2 ? 2 : 1);

export interface ElfMismatch {
  readonly path: string;
  readonly found: ElfIdentity;
  /** x86-64 levels: the level a binary needs above the package's. */
  readonly needsLevel?: number;
}

export interface ElfReport {
  readonly mismatches: readonly ElfMismatch[];
  /** x86-64 level packages: binaries whose note names the package's level, and those whose note does not. */
  readonly levelMarked: number;
  readonly levelUnmarked: readonly string[];
}

/**
 * How the payload of a package a build made is read: its bytes are the build's, so rpm2cpio runs as the
 * sandbox's unprivileged user (`launcher`, e.g. setpriv; the package comes in on stdin, so that user needs no
 * access to the node's files), under an address-space limit, for at most `timeoutMs`, and no more than
 * `maxBytes` of unpacked archive are read (a decompression bomb stops there).
 */
export interface PayloadLimits {
  readonly launcher: readonly string[];
  readonly memoryBytes: number;
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

const UNLIMITED: PayloadLimits = {
  launcher: [],
  memoryBytes: 4 * 1024 ** 3,
  timeoutMs: 3_600_000,
  maxBytes: Number.MAX_SAFE_INTEGER,
};

/**
 * The executables and shared objects in a binary RPM that are not ELF of `arch` (none for noarch and for arches
 * without an entry in ELF_OF_ARCH); for an x86-64 level, also those that need a higher level than the package's,
 * and which carry the level's note. Runs rpm2cpio on the file: it only decompresses, never installs.
 */
export async function inspectElf(rpmFile: string, arch: string, limits: PayloadLimits = UNLIMITED): Promise<ElfReport> {
  const want = ELF_OF_ARCH[arch];
  if (!want) return { mismatches: [], levelMarked: 0, levelUnmarked: [] };
  const level = isX86Level(arch) ? levelOf(arch) : null;
  const [cmd, ...args] = [...limits.launcher, 'prlimit', `--as=${limits.memoryBytes}`, '--', 'rpm2cpio'];
  const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  createReadStream(rpmFile)
    .on('error', () => child.kill('SIGKILL'))
    .pipe(child.stdin)
    .on('error', () => undefined); // rpm2cpio stopped reading (killed, or refused the package)
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, limits.timeoutMs);
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  const mismatches: ElfMismatch[] = [];
  const unmarked: string[] = [];
  let marked = 0;
  try {
    // Program headers and the property note sit in the first page of an x86-64 binary; 64 KiB is ample.
    for await (const f of cpioHeads(child.stdout, level ? 65_536 : 20, limits.maxBytes)) {
      const e = elfIdentity(f.head);
      if (!e) continue;
      const found = { bits: e.bits, endian: e.endian, machine: e.machine };
      if (e.machine !== want.machine || e.bits !== want.bits || e.endian !== want.endian) {
        mismatches.push({ path: f.path, found });
        continue;
      }
      if (!level) continue;
      const needed = x86IsaNeeded(f.head);
      if (needed !== null && highestLevel(needed) > level)
        mismatches.push({ path: f.path, found, needsLevel: highestLevel(needed) });
      else if (needed !== null && highestLevel(needed) === level) marked++;
      else unmarked.push(f.path);
    }
  } catch (err) {
    child.kill('SIGKILL');
    // The reader stopped mid-stream: the child's 'close' waits for its stdout to end, which a paused stream
    // with unread data never does.
    child.stdout.destroy();
    await exited.catch(() => null);
    throw timedOut ? new LenixError('NOT_AN_RPM', `reading the payload took over ${limits.timeoutMs} ms`) : err;
  } finally {
    clearTimeout(timer);
  }
  // What follows the trailer (block padding) is read and dropped, so rpm2cpio can finish writing and exit.
  child.stdout.resume();
  const code = await exited;
  if (timedOut) throw new LenixError('NOT_AN_RPM', `reading the payload took over ${limits.timeoutMs} ms`);
  if (code !== 0)
    throw new LenixError('NOT_AN_RPM', `rpm2cpio could not read the payload: ${stderr.trim().split('\n')[0] ?? ''}`);
  return { mismatches, levelMarked: marked, levelUnmarked: unmarked };
}

/** inspectElf's mismatches alone. */
export async function elfMismatches(
  rpmFile: string,
  arch: string,
  limits?: PayloadLimits,
): Promise<readonly ElfMismatch[]> {
  return (await inspectElf(rpmFile, arch, limits)).mismatches;
}
