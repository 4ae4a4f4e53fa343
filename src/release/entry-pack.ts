import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { METADATA_KINDS, type MetadataKind } from '../rpm/package-metadata.js';

/** The folder under the repositories' folder (repository names start with a letter or digit). */
export const PACK_DIR = '.entries';

/**
 * A generation is retired, and a new one started, once its files hold this much together (about 200,000
 * packages of ~5 KB of metadata; its index in memory is then some 40 MB).
 */
const GENERATION_BYTES = 1024 ** 3;

/** Where one entry's gzip member and text are in its generation's files: per kind [gzAt, gzLen, textAt, textLen]. */
export type EntryLocation = Float64Array;

/** An entry as derived: its key (`sha256/file`), each kind's gzip member and the text it inflates to. */
export interface PackEntry {
  readonly key: string;
  readonly gz: Readonly<Record<MetadataKind, Uint8Array>>;
  readonly text: Readonly<Record<MetadataKind, Uint8Array>>;
}

interface Generation {
  readonly id: string;
  readonly handles: Record<MetadataKind, { gz: FileHandle; text: FileHandle }>;
  readonly sizes: Record<MetadataKind, { gz: number; text: number }>;
  readonly index: Map<string, EntryLocation>;
  /** Publishes reading it now: a retired generation's files go when the last one is done. */
  holds: number;
  retired: boolean;
}

/** A publish's hold on the entries it found: read them from `files` at their locations, then `release`. */
export interface PackLease {
  readonly files: Readonly<Record<MetadataKind, { readonly gz: string; readonly text: string }>>;
  /** Each asked-for key's location, or undefined when the pack does not have it. */
  readonly found: readonly (EntryLocation | undefined)[];
  release(): void;
}

/**
 * The entries this server derived (when packages were signed or imported), appended to files beside the
 * repositories: REPOS/.entries/GEN-KIND.gz (the members, as stored in the database) and GEN-KIND.xml (the text
 * they inflate to). A publish of packages that are in no snapshot's cache yet (a new repository, thousands of
 * imports at once) reads them from here in runs, sequential reads from the page cache, rather than reading every
 * row from the database and inflating it (most of a full publish's work otherwise).
 *
 * A cache, like the plain logs (repodata-cache.ts): nothing is synced and the index lives in this process only,
 * so a restarted server starts a new generation (removing what an earlier process left) and reads the database
 * for anything it has not derived since. The text is the same createrepo_c output the database's member was made
 * from; where two servers derived one package, either's entry is that package's entry.
 */
export class EntryPack {
  private current: Generation | null = null;
  private starting: Promise<Generation> | null = null;
  private cleaned = false;

  constructor(readonly dir: string) {}

  /** Append derived entries (those already in the pack are skipped). */
  async add(entries: readonly PackEntry[]): Promise<void> {
    let gen = await this.generation();
    if (METADATA_KINDS.reduce((sum, k) => sum + gen.sizes[k].gz + gen.sizes[k].text, 0) > GENERATION_BYTES) {
      this.retire(gen);
      gen = await this.generation();
    }
    const fresh = entries.filter((e, i) => !gen.index.has(e.key) && entries.findIndex((x) => x.key === e.key) === i);
    if (fresh.length === 0) return;
    // Places are taken now, so concurrent adds never overlap; the index names an entry once it is written.
    const locations = fresh.map(() => new Float64Array(12));
    const writes: Promise<unknown>[] = [];
    for (const [k, kind] of METADATA_KINDS.entries()) {
      for (const part of ['gz', 'text'] as const) {
        const at = gen.sizes[kind][part];
        const pieces = fresh.map((e) => e[part][kind]);
        let end = at;
        for (const [i, p] of pieces.entries()) {
          locations[i]!.set([end, p.length], k * 4 + (part === 'gz' ? 0 : 2));
          end += p.length;
        }
        gen.sizes[kind][part] = end;
        writes.push(writeAll(gen.handles[kind][part], pieces, at));
      }
    }
    await Promise.all(writes);
    for (const [i, e] of fresh.entries()) gen.index.set(e.key, locations[i]!);
  }

  /** Where these keys' entries are, held until `release` (null when the pack has none of them). */
  lease(keys: readonly string[]): PackLease | null {
    const gen = this.current;
    if (!gen || gen.index.size === 0) return null;
    const found = keys.map((k) => gen.index.get(k));
    if (!found.some((x) => x !== undefined)) return null;
    gen.holds++;
    let released = false;
    const files = {} as Record<MetadataKind, { gz: string; text: string }>;
    for (const kind of METADATA_KINDS)
      files[kind] = { gz: this.file(gen, kind, 'gz'), text: this.file(gen, kind, 'text') };
    return {
      files,
      found,
      release: () => {
        if (released) return;
        released = true;
        gen.holds--;
        if (gen.retired && gen.holds === 0) void this.remove(gen);
      },
    };
  }

  /** Forget everything (a publish could not read it): the next derivation starts a new generation. */
  drop(): void {
    if (this.current) this.retire(this.current);
  }

  /** Close the files (the server is stopping); what they hold is left for the next process to remove. */
  async close(): Promise<void> {
    const gen = this.current ?? (await this.starting?.catch(() => null)) ?? null;
    this.current = null;
    this.starting = null;
    if (gen) await closeAll(gen);
  }

  private file(gen: Generation, kind: MetadataKind, part: 'gz' | 'text'): string {
    return path.join(this.dir, `${gen.id}-${kind}.${part === 'gz' ? 'gz' : 'xml'}`);
  }

  private generation(): Promise<Generation> {
    if (this.current) return Promise.resolve(this.current);
    this.starting ??= this.start().then(
      (gen) => {
        this.current = gen;
        this.starting = null;
        return gen;
      },
      (err: unknown) => {
        this.starting = null;
        throw err;
      },
    );
    return this.starting;
  }

  private async start(): Promise<Generation> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // What an earlier process left has no index any more.
    if (!this.cleaned) {
      for (const f of await readdir(this.dir)) await rm(path.join(this.dir, f), { recursive: true, force: true });
      this.cleaned = true;
    }
    const gen: Generation = {
      id: randomBytes(8).toString('hex'),
      handles: {} as Generation['handles'],
      sizes: {} as Generation['sizes'],
      index: new Map(),
      holds: 0,
      retired: false,
    };
    try {
      for (const kind of METADATA_KINDS) {
        gen.sizes[kind] = { gz: 0, text: 0 };
        gen.handles[kind] = {
          gz: await open(this.file(gen, kind, 'gz'), 'w+', 0o600),
          text: await open(this.file(gen, kind, 'text'), 'w+', 0o600),
        };
      }
    } catch (err) {
      await closeAll(gen);
      throw err;
    }
    return gen;
  }

  private retire(gen: Generation): void {
    gen.retired = true;
    if (this.current === gen) this.current = null;
    if (gen.holds === 0) void this.remove(gen);
  }

  private async remove(gen: Generation): Promise<void> {
    await closeAll(gen);
    for (const kind of METADATA_KINDS)
      for (const part of ['gz', 'text'] as const) await rm(this.file(gen, kind, part), { force: true });
  }
}

async function writeAll(h: FileHandle, pieces: readonly Uint8Array[], at: number): Promise<void> {
  let position = at;
  for (let i = 0; i < pieces.length; i += 512) {
    const part = pieces.slice(i, i + 512);
    const want = part.reduce((sum, p) => sum + p.length, 0);
    const { bytesWritten } = await h.writev(part, position);
    if (bytesWritten !== want) throw new Error(`entry pack: ${bytesWritten} of ${want} bytes written`);
    position += want;
  }
}

async function closeAll(gen: Generation): Promise<void> {
  for (const kind of METADATA_KINDS) {
    const h = gen.handles[kind];
    if (!h) continue;
    await h.gz?.close().catch(() => undefined);
    await h.text?.close().catch(() => undefined);
  }
}
