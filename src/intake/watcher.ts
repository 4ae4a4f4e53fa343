import type { Logger } from 'pino';

/** What the watcher needs from the server: owned here, implemented by the server's services. */
export interface WatchPort<S extends { name: string }> {
  watchedSources(): Promise<readonly S[]>;
  /** Fetch a source and build each new commit on its branch (the server's push service does it for hooks too). */
  buildNew(source: S): Promise<unknown>;
}

/**
 * `--watch`: every interval, fetch each watched source and build its new commits (oldest first; a commit
 * that cannot be built is marked seen, with the reason logged, so one broken commit does not block the ones
 * after it). A push (webhook or post-receive hook) does the same at once; watching is the fallback for forges
 * that cannot call Lenix.
 */
export class Watcher<S extends { name: string }> {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly port: WatchPort<S>,
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    for (const source of await this.port.watchedSources()) {
      try {
        await this.port.buildNew(source);
      } catch (err) {
        this.log.warn({ component: 'intake', source: source.name, err: (err as Error).message }, 'watch fetch failed');
      }
    }
  }
}
