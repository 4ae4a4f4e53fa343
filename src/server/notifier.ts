import { EventEmitter } from 'node:events';

/** Carries wake-ups between server processes (PostgreSQL LISTEN/NOTIFY: store/pg-notify.ts). */
export interface NotifyRelay {
  /** Tell the other servers (best effort: a lost message costs a waiter its timer, never correctness). */
  publish(topic: string): void;
  close(): Promise<void>;
}

/**
 * Wake-ups: a long-polling lease waits for "queue", a log follower for "log:ID", a build watcher for "task:ID".
 * They are only hints; every waiter re-reads the database, and also wakes on a timer, so servers sharing one
 * database stay correct without them. With a relay, what one server emits wakes the others' waiters at once.
 */
export class Notifier {
  private readonly emitter = new EventEmitter();
  private relay: NotifyRelay | null = null;
  constructor() {
    this.emitter.setMaxListeners(0);
  }

  /** Send this server's wake-ups to the others too (their relay calls `receive`). */
  attach(relay: NotifyRelay): void {
    this.relay = relay;
  }

  emit(topic: string): void {
    this.emitter.emit(topic);
    this.relay?.publish(topic);
  }

  /** A wake-up from another server: for this server's waiters only. */
  receive(topic: string): void {
    this.emitter.emit(topic);
  }

  /** Resolves on the next emit of `topic` (true) or after `ms` (false), whichever comes first. */
  wait(topic: string, ms: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (woken: boolean) => () => {
        clearTimeout(timer);
        this.emitter.off(topic, onEmit);
        signal?.removeEventListener('abort', onAbort);
        resolve(woken);
      };
      const onEmit = done(true);
      const onAbort = done(false);
      const timer = setTimeout(done(false), ms);
      this.emitter.once(topic, onEmit);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
