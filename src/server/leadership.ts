import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Fence, LeaderStore } from '../store/leader-store.js';

/** What only one server process may do at a time, whichever server it is. */
export type LeaderRole = 'publisher' | 'reaper' | 'collector';
export const LEADER_ROLES: readonly LeaderRole[] = ['publisher', 'reaper', 'collector'];

/** The port the server's loops ask: may this process do `role`'s work now? */
export interface Leader {
  holds(role: LeaderRole): boolean;
  /** While held: the fence the role's decisive writes carry (release-store.ts checks it as it writes). */
  fence(role: LeaderRole): Fence | null;
}

/**
 * This server's claims on the single-writer roles (leader-store.ts), renewed every third of their lifetime.
 * A role counts as held only until a safety margin before the expiry the database knows, by this process's
 * clock: a server whose renewals stall (a long pause, a lost database) stops acting before another may start.
 */
export class Leadership implements Leader {
  readonly holder = `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  /** Role → the time until which this process may act on it. */
  private readonly until = new Map<LeaderRole, number>();
  private readonly fencing = new Map<LeaderRole, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly deps: { leaders: LeaderStore; clock: Clock; log: Logger },
    private readonly ttlMs = 15_000,
  ) {}

  holds(role: LeaderRole): boolean {
    return (this.until.get(role) ?? 0) > this.deps.clock.now();
  }

  fence(role: LeaderRole): Fence | null {
    const fencing = this.fencing.get(role);
    return this.holds(role) && fencing !== undefined ? { role, holder: this.holder, fencing } : null;
  }

  /** Claim or renew every role once. */
  async renew(): Promise<void> {
    for (const role of LEADER_ROLES) {
      const now = this.deps.clock.now();
      const fencing = await this.deps.leaders.claim(role, this.holder, now, this.ttlMs).catch((err: unknown) => {
        this.deps.log.error({ component: 'leadership', role, err }, 'claim failed');
        return null;
      });
      const had = this.holds(role);
      if (fencing === null) {
        this.until.delete(role);
        if (had) this.deps.log.warn({ component: 'leadership', role }, 'role lost to another server');
        continue;
      }
      // Act until two thirds of the lifetime, counted from before the claim was sent.
      this.until.set(role, now + (this.ttlMs * 2) / 3);
      this.fencing.set(role, fencing);
      if (!had) this.deps.log.info({ component: 'leadership', role, fencing, holder: this.holder }, 'role taken');
    }
  }

  start(): void {
    this.timer = setInterval(() => void this.renew(), this.ttlMs / 3);
    this.timer.unref();
  }

  /** Stop renewing and hand every held role on at once. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const role of LEADER_ROLES) {
      if (!this.until.has(role)) continue;
      this.until.delete(role);
      await this.deps.leaders.resign(role, this.holder).catch(() => undefined);
    }
  }
}
