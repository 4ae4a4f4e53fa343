import type { Logger } from 'pino';

/** What the watcher needs from the server: owned here, implemented by the server's services. */
export interface WatchPort {
  watchedSources(): Promise<readonly { id: number; name: string; branch: string; lastSeenCommit: string | null }[]>;
  newCommits(source: { name: string; branch: string }, since: string | null): Promise<readonly string[]>;
  buildCommit(sourceName: string, commit: string): Promise<void>;
  markSeen(sourceId: number, commit: string): Promise<void>;
}

/**
 * `--watch`: every interval, fetch each watched source and create one build per new commit on its branch,
 * oldest first. A commit that cannot be built (bad spec) is still marked seen, with the reason logged, so
 * one broken commit does not block the ones after it.
 */
export class Watcher {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly port: WatchPort,
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
        const commits = await this.port.newCommits(source, source.lastSeenCommit);
        for (const sha of commits) {
          try {
            await this.port.buildCommit(source.name, sha);
          } catch (err) {
            this.log.warn(
              { component: 'intake', source: source.name, commit: sha, err: (err as Error).message },
              'watched commit not built',
            );
          }
          await this.port.markSeen(source.id, sha);
        }
      } catch (err) {
        this.log.warn({ component: 'intake', source: source.name, err: (err as Error).message }, 'watch fetch failed');
      }
    }
  }
}
