import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LEADER_ROLES, type LeaderRole } from './leadership.js';

/** What the metrics read when scraped (current values, not events). */
export interface MetricSources {
  queue(): Promise<{ role: string; arch: string; n: number }[]>;
  ledgerSize(): Promise<number>;
  leader(role: LeaderRole): boolean;
}

/**
 * The server's metrics in the Prometheus text format (`GET /metrics`, prom-client), one registry per server:
 * queue length per role and arch, lease latency, publish duration, ledger size, which roles this server
 * leads, and errors by code (BLOB_STORE_UNAVAILABLE and BLOB_CORRUPT are the blob store's).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly leaseSeconds = new Histogram({
    name: 'lenix_lease_seconds',
    help: 'Time to find and lease a task (the database part of a lease request; a next task that a completion brings is leased inside the completion and not counted)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly publishSeconds = new Histogram({
    name: 'lenix_publish_seconds',
    help: 'From a release being approved to its snapshot being live',
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'lenix_errors_total',
    help: 'Errors by code: failed requests and failed background work (publishing, reaping)',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  constructor(sources: MetricSources) {
    new Gauge({
      name: 'lenix_queue_tasks',
      help: 'Queued tasks by agent role and architecture',
      labelNames: ['role', 'arch'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const q of await sources.queue()) this.set({ role: q.role, arch: q.arch }, q.n);
      },
    });
    new Gauge({
      name: 'lenix_ledger_entries',
      help: 'Entries in the transparency ledger',
      registers: [this.registry],
      async collect() {
        this.set(await sources.ledgerSize());
      },
    });
    new Gauge({
      name: 'lenix_leader',
      help: 'Whether this server holds a single-writer role (1) or not (0)',
      labelNames: ['role'] as const,
      registers: [this.registry],
      collect() {
        for (const role of LEADER_ROLES) this.set({ role }, sources.leader(role) ? 1 : 0);
      },
    });
  }
}
