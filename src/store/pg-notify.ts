import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';

const CHANNEL = 'lenix_wakeups';
/** NOTIFY payloads are limited to 8000 bytes. */
const MAX_PAYLOAD = 7_000;

/**
 * Wake-ups between servers through PostgreSQL LISTEN/NOTIFY (server/notifier.ts's relay): topics emitted in
 * one turn of the event loop go out as one NOTIFY (origin, then one topic a line); what arrives from other
 * servers is handed to `receive`. One connection of its own, reconnected after a failure (a failover, a restart
 * of the database); meanwhile messages are dropped and waiters fall back on their timers.
 */
export class PgNotifyRelay {
  private readonly origin = randomBytes(6).toString('hex');
  private client: pg.Client | null = null;
  private queued = new Set<string>();
  private flushing = false;
  private sending: Promise<void> = Promise.resolve();
  private closed = false;
  private retry: NodeJS.Timeout | null = null;

  private constructor(
    private readonly url: string,
    private readonly receive: (topic: string) => void,
    private readonly log: Logger,
  ) {}

  static async start(url: string, receive: (topic: string) => void, log: Logger): Promise<PgNotifyRelay> {
    const relay = new PgNotifyRelay(url, receive, log);
    await relay.connect();
    return relay;
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (m) => {
      const [origin, ...topics] = (m.payload ?? '').split('\n');
      if (m.channel !== CHANNEL || origin === this.origin) return;
      for (const t of topics) if (t) this.receive(t);
    });
    client.on('error', (err) => {
      this.log.warn({ component: 'notify', err: err.message }, 'notification connection lost');
      this.drop(client);
    });
    client.on('end', () => this.drop(client));
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.client = client;
  }

  private drop(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    void client.end().catch(() => undefined);
    this.reconnectSoon();
  }

  private reconnectSoon(): void {
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      if (this.closed) return;
      this.connect().catch((err: unknown) => {
        this.log.warn({ component: 'notify', err: (err as Error).message }, 'notification connection not back yet');
        this.reconnectSoon();
      });
    }, 1000);
    this.retry.unref();
  }

  publish(topic: string): void {
    this.queued.add(topic);
    if (this.flushing) return;
    this.flushing = true;
    // One query at a time on the connection: flushes queue behind each other.
    setImmediate(() => {
      this.sending = this.sending.then(() => this.flush());
    });
  }

  private async flush(): Promise<void> {
    const topics = [...this.queued];
    this.queued = new Set();
    this.flushing = false;
    const client = this.client;
    if (!client || topics.length === 0) return;
    let payload = this.origin;
    const send = async (p: string) => {
      await client.query('select pg_notify($1, $2)', [CHANNEL, p]).catch(() => undefined);
    };
    for (const t of topics) {
      if (payload.length + t.length + 1 > MAX_PAYLOAD) {
        await send(payload);
        payload = this.origin;
      }
      payload += `\n${t}`;
    }
    await send(payload);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }
}
