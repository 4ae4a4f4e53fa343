/**
 * Streams a task's log to the server while it is written: bytes are batched (every 250 ms or 256 KiB) and
 * sent in order with their offset. A failed send is retried from the server's acknowledged size, and the
 * server skips bytes it already has, so nothing is lost or doubled.
 */
export class LogStreamer {
  private buffer: Buffer[] = [];
  private buffered = 0;
  private sent = 0; // bytes the server has acknowledged
  private flushing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private failures = 0;

  constructor(
    private readonly send: (offset: number, data: Uint8Array) => Promise<number>,
    private readonly intervalMs = 250,
    private readonly maxBatch = 256 * 1024,
    private readonly maxRequest = 1024 * 1024,
  ) {}

  write(chunk: Buffer | string): void {
    if (this.closed) return;
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    this.buffer.push(b);
    this.buffered += b.length;
    if (this.buffered >= this.maxBatch) void this.flush();
    else if (!this.timer) this.timer = setTimeout(() => void this.flush(), this.intervalMs);
  }

  get size(): number {
    return this.sent + this.buffered;
  }

  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.flushing = this.flushing.then(() => this.sendPending());
    return this.flushing;
  }

  private async sendPending(): Promise<void> {
    while (this.buffered > 0) {
      const taken = this.buffer.length;
      const pending = Buffer.concat(this.buffer);
      // One request carries at most maxRequest bytes (the server refuses larger chunks), however fast the
      // log grew while the previous request was in flight.
      const data = pending.subarray(0, this.maxRequest);
      const offset = this.sent;
      try {
        const size = await this.send(offset, data);
        const accepted = Math.min(data.length, Math.max(0, size - offset));
        const rest = pending.subarray(accepted);
        this.sent = offset + accepted;
        // Chunks written while the request was in flight stay queued behind what was not accepted.
        this.buffer = [...(rest.length > 0 ? [rest] : []), ...this.buffer.slice(taken)];
        this.buffered = this.buffer.reduce((n, b) => n + b.length, 0);
        this.failures = 0;
        if (accepted === 0) return;
      } catch {
        // Keep the bytes and retry on the next flush; give up after a few tries (the lease is likely gone).
        this.failures++;
        if (this.failures > 5) {
          this.buffer = [];
          this.buffered = 0;
        }
        return;
      }
    }
  }

  async close(): Promise<void> {
    for (let i = 0; i < 6 && this.buffered > 0; i++) await this.flush();
    this.closed = true;
  }
}
