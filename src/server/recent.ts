/**
 * Records read from the database and used again for a short while: the server reads a caller's token, and an
 * agent's record, on every message an agent sends. A value older than `ttlMs` is read anew; past `max`
 * entries the map is emptied, so it never grows without bound. A failed read keeps nothing.
 */
export class Recent<K, V> {
  private readonly entries = new Map<K, { at: number; value: V }>();
  constructor(
    private readonly ttlMs: number,
    private readonly max = 10_000,
  ) {}

  /** The value kept for `key` if it is at most `ttlMs` old, else what `read` gives (kept from `now`). */
  async get(key: K, now: number, read: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && now - hit.at <= this.ttlMs) return hit.value;
    const value = await read();
    this.set(key, value, now);
    return value;
  }

  /** Keep `value` for `key` from `now` (a write through this server replaces what it had read). */
  set(key: K, value: V, now: number): void {
    if (this.entries.size > this.max) this.entries.clear();
    this.entries.set(key, { at: now, value });
  }

  clear(): void {
    this.entries.clear();
  }
}
