import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * A piece of a stream: a range [from, to) of a file (with `tee`, also written to the stream's tee, as pushed
 * bytes are), or bytes given inline.
 */
export type DigestSegment =
  | { readonly file: string; readonly from: number; readonly to: number; readonly tee?: boolean }
  | { readonly bytes: Uint8Array };

/**
 * Hash these segments in order; with `out`, also write them to that new file (not synced). With `tee`, the bytes
 * pushed later (not these segments) are also written to that existing file, from `at` on.
 */
export interface DigestJob {
  readonly segments: readonly DigestSegment[];
  readonly out: string | null;
  readonly tee?: { readonly file: string; readonly at: number } | null;
  /**
   * Pushed bytes are whole gzip members, and what they inflate to is the stream's (hashed, counted and written
   * to `tee`); segments are taken as they are.
   */
  readonly inflate?: boolean;
}

/** What the main thread sends a worker about one stream. */
export type DigestMessage =
  | { readonly id: number; readonly op: 'open'; readonly job: DigestJob }
  | {
      readonly id: number;
      readonly op: 'push';
      readonly slice: SharedArrayBuffer;
      readonly length: number;
      /** An inflating stream's members: the length they must inflate to. */
      readonly inflated?: number;
    }
  | { readonly id: number; readonly op: 'end'; readonly segments: readonly DigestSegment[] }
  | { readonly id: number; readonly op: 'cancel' };

/** What a worker answers: a pushed slice taken (or dropped), the stream's digest at its end, or its first error. */
export type DigestReply =
  | { readonly id: number; readonly slice: SharedArrayBuffer }
  | { readonly id: number; readonly sha256: string; readonly size: number }
  | { readonly id: number; readonly error: string };

/** A stream's SHA-256 and length. */
export interface Digest {
  readonly sha256: string;
  readonly size: number;
}

/** A stream open on a worker: its first segments are hashed at once, later bytes as they are pushed. */
export interface DigestStream {
  /**
   * Send these bytes, in order (copied: the pieces can be reused once it returns). To an inflating stream, each
   * piece is whole gzip members and `inflated` the length each inflates to: a piece is never cut between two
   * sends, and the worker fails the stream when the members inflate to another length.
   */
  push(pieces: readonly Uint8Array[], inflated?: readonly number[]): Promise<void>;
  /** The last segments; the stream's SHA-256 and length once the worker has written it. */
  end(segments: readonly DigestSegment[]): Promise<Digest>;
  /** Drop the stream (its files are closed, not removed). */
  cancel(): void;
}

/**
 * Pushed bytes go to the workers through slices of shared memory, reused from one push (and one publish) to the
 * next: a new buffer for every push would be new memory each time, and first touches of memory are what a push
 * costs most (on the VM the benchmarks run on, ~18 µs a 4 KiB page, against ~1 µs to copy it into a page touched
 * before). At most SLICES are out at once; a push waits for one to come back.
 */
const SLICE = 1024 * 1024;
const SLICES = 24;
const slices = { free: [] as SharedArrayBuffer[], made: 0, waiting: [] as (() => void)[] };

async function takeSlice(): Promise<SharedArrayBuffer> {
  for (;;) {
    const free = slices.free.pop();
    if (free) return free;
    if (slices.made < SLICES) {
      slices.made++;
      return new SharedArrayBuffer(SLICE);
    }
    await new Promise<void>((r) => slices.waiting.push(r));
  }
}

function giveSlice(slice: SharedArrayBuffer): void {
  if (slice.byteLength !== SLICE) return; // made for one piece larger than a slice, never counted
  slices.free.push(slice);
  slices.waiting.shift()?.();
}

/** A worker and what it holds: its open streams, and the slices sent to it and not yet given back. */
interface Lane {
  readonly worker: Worker;
  readonly streams: Map<number, Stream>;
  readonly held: Set<SharedArrayBuffer>;
}

class Stream implements DigestStream {
  private failed: Error | null = null;
  private done = false;
  private settle: { resolve: (r: Digest) => void; reject: (e: Error) => void } | null = null;

  constructor(
    readonly id: number,
    private readonly lane: Lane,
  ) {}

  async push(pieces: readonly Uint8Array[], inflated?: readonly number[]): Promise<void> {
    let slice: Uint8Array | null = null;
    let used = 0;
    let expect = 0;
    const send = () => {
      if (!slice || used === 0 || this.failed) return; // a failed stream's slice is given back below
      const shared = slice.buffer as SharedArrayBuffer;
      this.lane.held.add(shared);
      const m: DigestMessage = inflated
        ? { id: this.id, op: 'push', slice: shared, length: used, inflated: expect }
        : { id: this.id, op: 'push', slice: shared, length: used };
      this.lane.worker.postMessage(m);
      [slice, used, expect] = [null, 0, 0];
    };
    const check = () => {
      if (this.failed) throw this.failed;
      if (this.done) throw new Error('digest stream already ended');
    };
    try {
      for (const [i, piece] of pieces.entries()) {
        if (inflated) {
          // Whole: in the slice being filled when it fits, else in the next (its own when larger than a slice).
          check();
          if (used + piece.length > SLICE) send();
          slice ??= new Uint8Array(piece.length > SLICE ? new SharedArrayBuffer(piece.length) : await takeSlice());
          slice.set(piece, used);
          used += piece.length;
          expect += inflated[i]!;
          continue;
        }
        for (let at = 0; at < piece.length; ) {
          check();
          slice ??= new Uint8Array(await takeSlice());
          const n = Math.min(piece.length - at, SLICE - used);
          slice.set(piece.subarray(at, at + n), used);
          [used, at] = [used + n, at + n];
          if (used === SLICE) send();
        }
      }
      send();
      if (this.failed) throw this.failed;
    } finally {
      if (slice) giveSlice((slice as Uint8Array).buffer as SharedArrayBuffer); // taken and not sent
    }
  }

  end(segments: readonly DigestSegment[]): Promise<Digest> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.done) return Promise.reject(new Error('digest stream already ended'));
    this.done = true;
    return new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
      this.lane.worker.postMessage({ id: this.id, op: 'end', segments } satisfies DigestMessage);
    });
  }

  cancel(): void {
    if (this.done || this.failed) return;
    this.done = true;
    this.lane.worker.postMessage({ id: this.id, op: 'cancel' } satisfies DigestMessage);
    this.close();
  }

  /** The worker's digest at the end, or the stream's first error. */
  answer(r: Digest | Error): void {
    if (r instanceof Error) {
      if (this.failed) return;
      this.failed = r;
      this.settle?.reject(r);
    } else this.settle?.resolve(r);
    this.close();
  }

  private close(): void {
    this.lane.streams.delete(this.id);
    if (this.lane.streams.size === 0) this.lane.worker.unref();
  }
}

/**
 * Worker threads that hash, and copy, repository metadata streams (digest-worker.ts). A publish re-hashes every
 * byte of its metadata (repomd's checksum and open-checksum cover whole files, the package count first), which
 * is most of its work at 10,000 packages and more: on the event loop it is one core and stalls every request;
 * here the three kinds' streams go side by side on every core and the server goes on serving. A stream is
 * opened with what is already on disk and then fed bytes as the database returns them, so the hashing and
 * writing go on while the next entries are read. Workers start on first use, one per core (at most four), and
 * keep the process alive only while they have a stream open.
 */
class DigestPool {
  private readonly lanes: (Lane | undefined)[] = [];
  private nextId = 0;
  private readonly size = Math.max(1, Math.min(4, availableParallelism()));

  /** Open a stream on worker `lane` modulo the pool's size (callers spread their streams by lane). */
  open(job: DigestJob, lane: number): DigestStream {
    const at = lane % this.size;
    const l = this.lanes[at] ?? this.start(at);
    const stream = new Stream(this.nextId++, l);
    if (l.streams.size === 0) l.worker.ref();
    l.streams.set(stream.id, stream);
    l.worker.postMessage({ id: stream.id, op: 'open', job } satisfies DigestMessage);
    return stream;
  }

  private start(at: number): Lane {
    const worker = new Worker(new URL('./digest-worker.js', import.meta.url));
    worker.unref();
    const lane: Lane = { worker, streams: new Map(), held: new Set() };
    this.lanes[at] = lane;
    worker.on('message', (r: DigestReply) => {
      if ('slice' in r) {
        // Every pushed slice comes back, whatever became of its stream.
        lane.held.delete(r.slice);
        giveSlice(r.slice);
        return;
      }
      lane.streams.get(r.id)?.answer('error' in r ? new Error(r.error) : { sha256: r.sha256, size: r.size });
    });
    // A worker that dies fails its open streams and gives back its slices; the next stream on its lane starts
    // another.
    const gone = (err: Error) => {
      if (this.lanes[at] === lane) this.lanes[at] = undefined;
      for (const slice of lane.held) giveSlice(slice);
      lane.held.clear();
      for (const s of [...lane.streams.values()]) s.answer(err);
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`digest worker exited (${code})`)));
    return lane;
  }
}

let pool: DigestPool | null = null;

/** Open a stream on a worker thread: `job`'s segments now, more bytes by `push`, the rest at `end`. */
export function openDigest(job: DigestJob, lane = 0): DigestStream {
  pool ??= new DigestPool();
  return pool.open(job, lane);
}

/** Hash (and with `out`, write) one whole stream on a worker thread. */
export function digestStream(job: DigestJob, lane = 0): Promise<Digest> {
  return openDigest(job, lane).end([]);
}
