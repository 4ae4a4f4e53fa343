import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The dependency rule of the architecture page: pure folders (core, ledger, attest, errata, release
 * planning, scheduler) import no I/O, and import other src folders only downward. Checked on the
 * TypeScript sources, so a violation fails before anything runs.
 */
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

const PURE: Record<string, readonly string[]> = {
  core: [],
  scheduler: ['core'],
  ledger: ['core'],
  attest: ['core', 'ledger'],
  errata: ['core'],
  release: ['core', 'errata', 'attest', 'ledger'], // planning files only (see isPlanning)
};

const IO_MODULES =
  /^(node:)?(fs|fs\/promises|child_process|net|http|https|http2|dgram|dns|tls|os|worker_threads|cluster|readline|module|vm|inspector)$|^(pg|better-sqlite3|kysely|fastify|pino|@fastify\/.*|commander|undici)$/;

async function tsFiles(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
}

const isPlanning = (folder: string, file: string) => folder !== 'release' || /plan/.test(path.basename(file));

function imports(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(
    /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g,
  )) {
    out.push((m[1] ?? m[2] ?? m[3])!);
  }
  return out;
}

test('pure folders import no I/O and only the folders below them', async () => {
  const violations: string[] = [];
  let checked = 0;
  for (const [folder, allowed] of Object.entries(PURE)) {
    for (const file of await tsFiles(path.join(SRC, folder))) {
      if (!isPlanning(folder, file)) continue;
      checked++;
      const rel = path.relative(SRC, file);
      const text = await readFile(file, 'utf8');
      for (const spec of imports(text)) {
        if (IO_MODULES.test(spec)) violations.push(`${rel} imports ${spec}`);
        if (spec.startsWith('.')) {
          const target = path.relative(SRC, path.resolve(path.dirname(file), spec)).split(path.sep)[0]!;
          if (target !== folder && !allowed.includes(target))
            violations.push(`${rel} imports ${spec} (${target} is not below ${folder})`);
        }
      }
      if (/\bprocess\.(env|argv|cwd|exit)\b/.test(text)) violations.push(`${rel} reads process state`);
    }
  }
  assert.ok(checked >= 8, `expected to check the pure sources, checked ${checked}`);
  assert.deepEqual(violations, []);
});

/**
 * Every top-level folder of src and the folders it may import (its own always). The architecture page draws
 * the same picture. Agents and release never reach the server; the CLI talks to the server through client/
 * and imports only the server's entry point (server/main.ts, server/context.ts) to run that role in-process;
 * the client shares the server's wire types by a type-only import of server/api/present.ts.
 */
const ALLOWED: Record<string, readonly string[]> = {
  types: [],
  core: [],
  scheduler: ['core'],
  ledger: ['core'],
  attest: ['core', 'ledger'],
  errata: ['core'],
  crypto: ['core', 'exec'],
  exec: [],
  intake: ['core', 'exec'],
  rpm: ['core', 'crypto', 'exec'],
  store: ['core', 'scheduler', 'errata'],
  release: ['core', 'errata', 'attest', 'ledger', 'crypto', 'rpm', 'scheduler', 'store'],
  client: ['core', 'attest', 'scheduler', 'store', 'server'],
  agents: ['core', 'crypto', 'exec', 'intake', 'ledger', 'attest', 'rpm', 'scheduler', 'store', 'client'],
  server: ['core', 'scheduler', 'ledger', 'attest', 'errata', 'crypto', 'exec', 'intake', 'rpm', 'store', 'release'],
  cli: [
    'core',
    'scheduler',
    'ledger',
    'attest',
    'errata',
    'crypto',
    'rpm',
    'store',
    'release',
    'client',
    'agents',
    'server',
  ],
};
/** Where a folder may reach into another only at named files (and how). */
const ONLY: Record<string, { files: RegExp; typeOnly: boolean }> = {
  'cli->server': { files: /^server\/(main|context)\.ts$/, typeOnly: false },
  'client->server': { files: /^server\/api\/present\.ts$/, typeOnly: true },
};

interface Edge {
  readonly from: string;
  readonly to: string;
  readonly typeOnly: boolean;
}

/** Every relative import between files of src (type-only ones too: a cycle of types is a cycle of meaning). */
async function importGraph(): Promise<Edge[]> {
  const edges: Edge[] = [];
  for (const file of await tsFiles(SRC)) {
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(
      /(?:^|\n)\s*(import|export)(\s+type)?\s[^'";]*?from\s+['"](\.[^'"]+)['"]|import\s*\(\s*['"](\.[^'"]+)['"]\s*\)/g,
    )) {
      const spec = (m[3] ?? m[4])!;
      const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
      edges.push({ from: path.relative(SRC, file), to: path.relative(SRC, target), typeOnly: m[2] !== undefined });
    }
  }
  return edges;
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
export function cycles(edges: readonly { from: string; to: string }[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let counter = 0;
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (next.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return out;
}

test('no import cycle in src', async () => {
  const edges = await importGraph();
  assert.ok(edges.length > 300, `expected the whole import graph, found ${edges.length} edges`);
  assert.deepEqual(cycles(edges), []);
});

test('every top-level folder has a rule, and every import between folders follows it', async () => {
  const folders = (await readdir(SRC, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  assert.deepEqual(
    folders.filter((f) => !(f in ALLOWED)),
    [],
    'a folder without a rule in ALLOWED',
  );
  const violations: string[] = [];
  for (const e of await importGraph()) {
    const [from, to] = [e.from.split(path.sep)[0]!, e.to.split(path.sep)[0]!];
    if (from === to) continue;
    if (!ALLOWED[from]?.includes(to)) {
      violations.push(`${e.from} imports ${e.to} (${from} may not import ${to})`);
      continue;
    }
    const only = ONLY[`${from}->${to}`];
    if (only && (!only.files.test(e.to.split(path.sep).join('/')) || (only.typeOnly && !e.typeOnly)))
      violations.push(`${e.from} imports ${e.to} (${from} reaches ${to} only through ${only.files})`);
  }
  assert.deepEqual(violations, []);
});

test('the cycle finder finds a cycle (so that it can fail)', () => {
  assert.deepEqual(
    cycles([
      { from: 'a', to: 'b' },
      { from: 'b', to: 'c' },
      { from: 'c', to: 'a' },
      { from: 'c', to: 'd' },
    ]),
    [['a', 'b', 'c']],
  );
  assert.deepEqual(cycles([{ from: 'a', to: 'a' }]), [['a']]);
  assert.deepEqual(cycles([{ from: 'a', to: 'b' }]), []);
});

test('the checker catches a violation (so that it can fail)', () => {
  assert.ok(IO_MODULES.test('node:fs'));
  assert.ok(IO_MODULES.test('child_process'));
  assert.deepEqual(
    imports(`import { x } from 'node:fs';\nimport type { Y } from '../store/store.js';\nconst m = await import('pg');`),
    ['node:fs', '../store/store.js', 'pg'],
  );
});
