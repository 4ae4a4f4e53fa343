import { EventEmitter } from 'node:events';

/**
 * In-process wake-ups: a long-polling lease waits for "queue", a log follower for "log:ID", a build watcher
 * for "task:ID". They are only hints; every waiter re-reads the database, and also wakes on a timer, so
 * several server replicas over one PostgreSQL stay correct without sharing this object.
 */
export class Notifier {
  private readonly emitter = new EventEmitter();
  constructor() {
    this.emitter.setMaxListeners(0);
  }

  emit(topic: string): void {
    this.emitter.emit(topic);
  }

  /** Resolves on the next emit of `topic` or after `ms`, whichever comes first. */
  wait(topic: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.emitter.off(topic, done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.emitter.once(topic, done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
