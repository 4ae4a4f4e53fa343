import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** A piece of a stream: a range [from, to) of a file, or bytes given inline. */
export type DigestSegment =
  | { readonly file: string; readonly from: number; readonly to: number }
  | { readonly bytes: Uint8Array };

/** Hash these segments in order; with `out`, also write them to that new file and sync it. */
export interface DigestJob {
  readonly segments: readonly DigestSegment[];
  readonly out: string | null;
}

export type DigestReply =
  | { readonly id: number; readonly sha256: string; readonly size: number }
  | { readonly id: number; readonly error: string };

interface Pending {
  readonly id: number;
  readonly job: DigestJob;
  readonly resolve: (r: { sha256: string; size: number }) => void;
  readonly reject: (e: Error) => void;
}

/**
 * Worker threads that hash, and copy, repository metadata streams (digest-worker.ts). A publish re-hashes every
 * byte of its metadata (repomd's checksum and open-checksum cover whole files, the package count first), which
 * is most of its work at 10,000 packages and more: on the event loop it is one core and stalls every request;
 * here the three kinds' streams go side by side on every core and the server goes on serving. Workers start
 * on first use, one per core (at most four), and keep the process alive only while they have work.
 */
class DigestPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Pending>();
  private readonly queue: Pending[] = [];
  private started = 0;
  private nextId = 0;
  private readonly size = Math.max(1, Math.min(4, availableParallelism()));

  run(job: DigestJob): Promise<{ sha256: string; size: number }> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, job, resolve, reject });
      this.drain();
    });
  }

  private drain(): void {
    while (this.queue.length > 0) {
      const worker = this.idle.pop() ?? (this.started < this.size ? this.start() : null);
      if (!worker) return;
      const p = this.queue.shift()!;
      this.busy.set(worker, p);
      worker.ref();
      worker.postMessage({ id: p.id, job: p.job });
    }
  }

  private start(): Worker {
    this.started++;
    const worker = new Worker(new URL('./digest-worker.js', import.meta.url));
    worker.unref();
    worker.on('message', (r: DigestReply) => {
      const p = this.busy.get(worker);
      this.busy.delete(worker);
      worker.unref();
      this.idle.push(worker);
      if (p && p.id === r.id) {
        if ('error' in r) p.reject(new Error(r.error));
        else p.resolve({ sha256: r.sha256, size: r.size });
      }
      this.drain();
    });
    // A worker that dies fails its job; the next job starts another.
    const gone = (err: Error) => {
      const p = this.busy.get(worker);
      this.busy.delete(worker);
      const at = this.idle.indexOf(worker);
      if (at >= 0) this.idle.splice(at, 1);
      else if (!p) return; // already accounted for
      this.started--;
      p?.reject(err);
      this.drain();
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`digest worker exited (${code})`)));
    return worker;
  }
}

let pool: DigestPool | null = null;

/** Hash (and with `out`, write and sync) one stream on a worker thread. */
export function digestStream(job: DigestJob): Promise<{ sha256: string; size: number }> {
  pool ??= new DigestPool();
  return pool.run(job);
}
