import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { configPath } from './config.js';

/** The last checkpoint this client verified for a log (per pinned key), so a fork is noticed later. */
function statePath(): string {
  return path.join(path.dirname(configPath()), 'ledger-state.json');
}

export async function lastSeen(logKey: string): Promise<{ size: number; root: string } | null> {
  try {
    const all = JSON.parse(await readFile(statePath(), 'utf8')) as Record<string, { size: number; root: string }>;
    return all[logKey] ?? null;
  } catch {
    return null;
  }
}

export async function remember(logKey: string, size: number, note: string): Promise<void> {
  let all: Record<string, { size: number; root: string }> = {};
  try {
    all = JSON.parse(await readFile(statePath(), 'utf8')) as typeof all;
  } catch {
    /* first use */
  }
  const { parseCheckpoint } = await import('../ledger/checkpoint.js');
  const root = Buffer.from(parseCheckpoint(note.slice(0, note.lastIndexOf('\n\n') + 1)).root).toString('hex');
  if ((all[logKey]?.size ?? -1) > size) return;
  all[logKey] = { size, root };
  await mkdir(path.dirname(statePath()), { recursive: true });
  await writeFile(statePath(), `${JSON.stringify(all, null, 2)}\n`);
}

export async function checkpointSize(note: string): Promise<number> {
  const { parseCheckpoint } = await import('../ledger/checkpoint.js');
  return parseCheckpoint(note.slice(0, note.lastIndexOf('\n\n') + 1)).size;
}
