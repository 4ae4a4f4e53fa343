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

test('the checker catches a violation (so that it can fail)', () => {
  assert.ok(IO_MODULES.test('node:fs'));
  assert.ok(IO_MODULES.test('child_process'));
  assert.deepEqual(
    imports(`import { x } from 'node:fs';\nimport type { Y } from '../store/store.js';\nconst m = await import('pg');`),
    ['node:fs', '../store/store.js', 'pg'],
  );
});
