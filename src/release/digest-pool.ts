import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** A piece of a stream: a range [from, to) of a file, or bytes given inline. */
export type DigestSegment =
  | { readonly file: string; readonly from: number; readonly to: number }
  | { readonly bytes: Uint8Array };

/**
 * Hash these segments in order; with `out`, also write them to that new file and sync it. With `tee`, the bytes
 * pushed later (not these segments) are also written to that existing file, from `at` on.
 */
export interface DigestJob {
  readonly segments: readonly DigestSegment[];
  readonly out: string | null;
  readonly tee?: { readonly file: string; readonly at: number } | null;
}

/** What the main thread sends a worker about one stream. */
export type DigestMessage =
  | { readonly id: number; readonly op: 'open'; readonly job: DigestJob }
  | { readonly id: number; readonly op: 'push'; readonly bytes: Uint8Array }
  | { readonly id: number; readonly op: 'end'; readonly segments: readonly DigestSegment[] }
  | { readonly id: number; readonly op: 'cancel' };

/** What a worker answers: a push taken, the stream's digest at its end, or the stream's first error. */
export type DigestReply =
  | { readonly id: number; readonly taken: number }
  | { readonly id: number; readonly sha256: string; readonly size: number }
  | { readonly id: number; readonly error: string };

/** A stream open on a worker: its first segments are hashed at once, later bytes as they are pushed. */
export interface DigestStream {
  /** Send these bytes, in order; waits while more than a few MiB sent are not yet taken by the worker. */
  push(pieces: readonly Uint8Array[]): Promise<void>;
  /** The last segments; the stream's SHA-256 and length once the worker has written and synced it. */
  end(segments: readonly DigestSegment[]): Promise<{ sha256: string; size: number }>;
  /** Drop the stream (its files are closed, not removed). */
  cancel(): void;
}

/** Bytes pushed to a stream and not yet taken, above which `push` waits. */
const IN_FLIGHT = 16 * 1024 * 1024;

class Stream implements DigestStream {
  private inFlight = 0;
  private failed: Error | null = null;
  private done = false;
  private wake: (() => void) | null = null;
  private settle: { resolve: (r: { sha256: string; size: number }) => void; reject: (e: Error) => void } | null =
    null;

  constructor(
    readonly id: number,
    private readonly worker: Worker,
    private readonly closed: (s: Stream) => void,
  ) {}

  async push(pieces: readonly Uint8Array[]): Promise<void> {
    if (this.failed) throw this.failed;
    if (this.done) throw new Error('digest stream already ended');
    let length = 0;
    for (const p of pieces) length += p.length;
    if (length === 0) return;
    // One new buffer, moved to the worker rather than copied again.
    const bytes = new Uint8Array(length);
    let at = 0;
    for (const p of pieces) {
      bytes.set(p, at);
      at += p.length;
    }
    this.worker.postMessage({ id: this.id, op: 'push', bytes } satisfies DigestMessage, [bytes.buffer]);
    this.inFlight += length;
    while (this.inFlight > IN_FLIGHT && !this.failed) await new Promise<void>((r) => (this.wake = r));
    if (this.failed) throw this.failed;
  }

  end(segments: readonly DigestSegment[]): Promise<{ sha256: string; size: number }> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.done) return Promise.reject(new Error('digest stream already ended'));
    this.done = true;
    return new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
      this.worker.postMessage({ id: this.id, op: 'end', segments } satisfies DigestMessage);
    });
  }

  cancel(): void {
    if (this.done || this.failed) return;
    this.done = true;
    this.worker.postMessage({ id: this.id, op: 'cancel' } satisfies DigestMessage);
    this.closed(this);
  }

  /** A reply from the worker. */
  answer(r: DigestReply): void {
    if ('taken' in r) {
      this.inFlight -= r.taken;
      if (this.inFlight <= IN_FLIGHT) this.wakeUp();
      return;
    }
    if ('error' in r) this.fail(new Error(r.error));
    else {
      this.settle?.resolve({ sha256: r.sha256, size: r.size });
      this.closed(this);
    }
  }

  fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.wakeUp();
    this.settle?.reject(err);
    this.closed(this);
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
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
  private readonly workers: (Worker | undefined)[] = [];
  private readonly streams = new Map<Worker, Map<number, Stream>>();
  private nextId = 0;
  private readonly size = Math.max(1, Math.min(4, availableParallelism()));

  /** Open a stream on worker `lane` modulo the pool's size (callers spread their streams by lane). */
  open(job: DigestJob, lane: number): DigestStream {
    const at = lane % this.size;
    const worker = this.workers[at] ?? this.start(at);
    const open = this.streams.get(worker)!;
    const stream = new Stream(this.nextId++, worker, (s) => {
      open.delete(s.id);
      if (open.size === 0) worker.unref();
    });
    if (open.size === 0) worker.ref();
    open.set(stream.id, stream);
    worker.postMessage({ id: stream.id, op: 'open', job } satisfies DigestMessage);
    return stream;
  }

  private start(at: number): Worker {
    const worker = new Worker(new URL('./digest-worker.js', import.meta.url));
    worker.unref();
    this.workers[at] = worker;
    this.streams.set(worker, new Map());
    worker.on('message', (r: DigestReply) => this.streams.get(worker)?.get(r.id)?.answer(r));
    // A worker that dies fails its open streams; the next stream on its lane starts another.
    const gone = (err: Error) => {
      if (this.workers[at] === worker) this.workers[at] = undefined;
      const open = this.streams.get(worker);
      this.streams.delete(worker);
      for (const s of open?.values() ?? []) s.fail(err);
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`digest worker exited (${code})`)));
    return worker;
  }
}

let pool: DigestPool | null = null;

/** Open a stream on a worker thread: `job`'s segments now, more bytes by `push`, the rest at `end`. */
export function openDigest(job: DigestJob, lane = 0): DigestStream {
  pool ??= new DigestPool();
  return pool.open(job, lane);
}

/** Hash (and with `out`, write and sync) one whole stream on a worker thread. */
export function digestStream(job: DigestJob, lane = 0): Promise<{ sha256: string; size: number }> {
  return openDigest(job, lane).end([]);
}
