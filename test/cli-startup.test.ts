import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { COMMAND_MODULES, program } from '../src/cli/main.js';
import { BIN, lenix } from './support/cli.js';

/**
 * The CLI loads only the registration module of the command it runs (start-up time, issue 15). The table that
 * says which module holds which command must cover the whole program, and each entry must register its command.
 */
test('every top-level command is in the lazy-loading table, and its module alone registers it', async () => {
  const all = (await program({ code: 0 })).commands.map((c) => c.name());
  assert.ok(all.length >= 25, `the whole program has its commands (${all.length})`);
  assert.deepEqual([...all].sort(), Object.keys(COMMAND_MODULES).sort());
  for (const name of all) {
    const alone = await program({ code: 0 }, ['node', 'lenix', '--server', 'http://x', name, '--help']);
    assert.ok(
      alone.commands.some((c) => c.name() === name),
      `${name}: its module registers it`,
    );
    assert.ok(alone.commands.length < all.length, `${name}: only its own module is loaded`);
  }
});

/** Run `node BIN ARGS` with NODE_DEBUG=module, which says which files the CLI loaded. */
async function withModuleDebug(bin: string, args: string[]): Promise<{ code: number; stderr: string }> {
  const env = { ...process.env, NODE_DEBUG: 'module', LENIX_SERVER: 'http://127.0.0.1:9', LENIX_TOKEN: 'x' };
  try {
    await promisify(execFile)(process.execPath, [bin, ...args], { env });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

/** Each bundle, a command it runs, and what that command says with no server (or no target) to work with. */
const BUNDLED = [
  { file: 'lenix-verify.cjs', args: ['verify'], says: /lenix: BAD_REQUEST: give an RPM file/, code: 2 },
  {
    file: 'lenix-client.cjs',
    args: ['builds'],
    says: /lenix: UNAVAILABLE: cannot reach http:\/\/127\.0\.0\.1:9/,
    code: 7,
  },
];

test('bundled commands run from their one-file bundle when it is fresh, and from the whole CLI when it is stale', async () => {
  const dist = path.join(path.dirname(BIN), '..', 'dist');
  // The table names, for each bundle, exactly the commands the CLI's own table gives the same module.
  const { commands } = JSON.parse(await readFile(path.join(dist, 'lenix-bundles.json'), 'utf8')) as {
    commands: Record<string, { bundle: string; source: string }>;
  };
  for (const [like, file] of [
    ['verify', 'lenix-verify.cjs'],
    ['builds', 'lenix-client.cjs'],
  ] as const) {
    const same = Object.keys(COMMAND_MODULES).filter((n) => COMMAND_MODULES[n] === COMMAND_MODULES[like]);
    const listed = Object.keys(commands).filter((n) => commands[n]!.bundle === file);
    assert.deepEqual(listed.sort(), same.sort(), `${file}: its commands`);
  }
  for (const b of BUNDLED) {
    const fresh = await withModuleDebug(BIN, b.args);
    assert.equal(fresh.code, b.code, fresh.stderr);
    assert.match(fresh.stderr, b.says);
    assert.match(fresh.stderr, new RegExp(`load "[^"]*/dist/${b.file.replace('.', '\\.')}"`), `${b.file} ran`);
    // Global options before the command do not keep it from its bundle.
    const global = await withModuleDebug(BIN, ['--server', 'http://127.0.0.1:9', ...b.args]);
    assert.match(global.stderr, new RegExp(`/dist/${b.file.replace('.', '\\.')}`), `${b.file} after --server`);
  }
  // Help is the whole CLI's for the command.
  const help = await lenix(['verify', '--help'], {});
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /--bundle <file>/);
  const buildsHelp = await lenix(['builds', '--help'], {});
  assert.equal(buildsHelp.code, 0, buildsHelp.stderr);
  assert.match(buildsHelp.stdout, /Usage: lenix builds/);

  // The same files with bundles older than the compiled code (a tsc run since the last bundling).
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-stale-'));
  try {
    await mkdir(path.join(dir, 'bin'));
    await mkdir(path.join(dir, 'dist'));
    for (const f of ['lenix.js', 'package.json'])
      await copyFile(path.join(path.dirname(BIN), f), path.join(dir, 'bin', f));
    await symlink(path.join(dist, 'src'), path.join(dir, 'dist', 'src'));
    await copyFile(path.join(dist, 'lenix-bundles.json'), path.join(dir, 'dist', 'lenix-bundles.json'));
    for (const b of BUNDLED) {
      const old = path.join(dir, 'dist', b.file);
      await copyFile(path.join(dist, b.file), old);
      await utimes(old, new Date(0), new Date(0));
      const stale = await withModuleDebug(path.join(dir, 'bin', 'lenix.js'), b.args);
      assert.equal(stale.code, b.code, stale.stderr);
      assert.match(stale.stderr, b.says);
      assert.doesNotMatch(stale.stderr, new RegExp(b.file.replace('.', '\\.')), `a stale ${b.file} is not run`);
      // The bundle alone, away from the project (no node_modules): the command runs on its own.
      const alone = await withModuleDebug(old, b.args);
      assert.equal(alone.code, b.code, alone.stderr);
      assert.match(alone.stderr, b.says);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Run `node --require HOOK BIN ARGS`: the hook prints every module the process requires (bundled code too). */
async function requiresOf(args: string[]): Promise<{ code: number; stderr: string; required: Set<string> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-requires-'));
  try {
    const hook = path.join(dir, 'hook.cjs');
    await writeFile(
      hook,
      "const M = require('node:module'); const load = M._load; M._load = function (r, ...rest) { process.stderr.write(`require: ${r}\\n`); return load.call(this, r, ...rest); };\n",
    );
    const r = await promisify(execFile)(process.execPath, ['--require', hook, BIN, ...args], {
      env: { ...process.env, HOME: dir, LENIX_CONFIG: path.join(dir, 'none.json') },
    }).then(
      (ok) => ({ code: 0, stderr: ok.stderr }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    const required = new Set([...r.stderr.matchAll(/^require: (?:node:)?(.+)$/gm)].map((m) => m[1]!));
    return { ...r, required };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('an offline lenix verify runs without commander; other arguments get the whole command', async () => {
  const { ed25519Signer } = await import('../src/ledger/note.js');
  const logKey = ed25519Signer('lenix.local/ledger', new Uint8Array(32).fill(7)).verifierKey;
  // The offline path proper: it gets as far as reading the package, and commander (which requires
  // child_process, as the hook sees below) never loads.
  const offline = await requiresOf([
    'verify',
    '/nonexistent.rpm',
    '--bundle',
    '/nonexistent.proof',
    '--log-key',
    logKey,
  ]);
  assert.equal(offline.code, 4, offline.stderr);
  assert.match(offline.stderr, /^lenix: NOT_FOUND: cannot read \/nonexistent\.rpm$/m);
  assert.ok(offline.required.has('crypto'), 'the hook sees what the bundle requires');
  assert.ok(!offline.required.has('child_process'), 'commander is not loaded');
  // Anything else goes through commander, which says what is wrong with the arguments as it always has.
  for (const args of [
    ['verify', '/nonexistent.rpm', '--bundle', '/nonexistent.proof', '--log-key', logKey, '--bogus'],
    ['verify', '/nonexistent.rpm', '--bundle'],
    ['verify', '/a.rpm', '/b.rpm', '--bundle', '/nonexistent.proof'],
  ]) {
    const r = await requiresOf(args);
    assert.ok(r.required.has('child_process'), `${args.join(' ')}: commander`);
    assert.notEqual(r.code, 0, r.stderr);
  }
});

/** The packages a module loads when it is imported: its static imports, followed through src (not `import type`). */
async function packagesLoaded(entry: string): Promise<Set<string>> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = async (file: string): Promise<void> => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)(?!\s+type\s)[^'";]*?from\s+'([^']+)'|^import\s+'([^']+)'/gm)) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith('.')) await visit(path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts'));
      else if (!spec.startsWith('node:'))
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  };
  await visit(entry);
  return packages;
}

test("the client commands start without the server's libraries (zod, Fastify, Kysely, SQLite, PostgreSQL)", async () => {
  const src = path.join(path.dirname(BIN), '..', 'src', 'cli');
  // The verifier's entry point loads no library at all (commander only when the arguments need it, lazily).
  assert.deepEqual([...(await packagesLoaded(path.join(src, 'verify-main.ts')))], []);
  for (const module of ['build-commands.ts', 'verify.ts', 'client-main.ts']) {
    const loaded = await packagesLoaded(path.join(src, module));
    assert.deepEqual(
      [...loaded].filter((p) => p !== 'commander'),
      [],
      `${module} loads no library but commander`,
    );
  }
  // The walk sees a library that is imported (so that it can fail).
  assert.ok((await packagesLoaded(path.join(src, '..', 'core', 'protocol.ts'))).has('zod'));
});
