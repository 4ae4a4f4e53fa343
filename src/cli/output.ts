/** Plain-text tables and human times for the CLI; `--json` bypasses all of this. */
export function table(rows: readonly (readonly (string | number | null)[])[], header: readonly string[]): string {
  const all = [header, ...rows].map((r) => r.map((c) => (c === null ? '-' : String(c))));
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function duration(startIso: string | null, endIso: string | null, now = Date.now()): string {
  if (!startIso) return '-';
  const ms = (endIso ? Date.parse(endIso) : now) - Date.parse(startIso);
  const s = Math.round(ms / 100) / 10;
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}

/** Commander option parser for repeatable options (`--x a --x b` → ['a', 'b']). */
export const collect = (v: string, prev: string[] = []) => [...prev, v];

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
