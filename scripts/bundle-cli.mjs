// Bundles commands of the CLI into one CommonJS file each, after tsc (part of `npm run build`): `lenix verify`
// (dist/src/cli/verify-main.js → dist/lenix-verify.cjs) and the build commands (client-main.js →
// dist/lenix-client.cjs). dist/lenix-bundles.json says which command runs from which bundle, taken from the CLI's
// own table (COMMAND_MODULES: the commands that load the same module). bin/lenix.js runs a command from its bundle
// when the bundle is at least as new as its compiled entry point, and the whole CLI otherwise (a tsc run alone
// never leaves a stale bundle in use).
import { writeFile } from 'node:fs/promises';
import { build } from 'esbuild';
import { COMMAND_MODULES } from '../dist/src/cli/main.js';

const BUNDLES = [
  { out: 'lenix-verify.cjs', source: 'src/cli/verify-main.js', like: 'verify' },
  { out: 'lenix-client.cjs', source: 'src/cli/client-main.js', like: 'builds' },
];

const commands = {};
for (const b of BUNDLES) {
  await build({
    entryPoints: [`dist/${b.source}`],
    outfile: `dist/${b.out}`,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // These commands' code never reads import.meta; a library that did would get undefined, so fail instead.
    logOverride: { 'empty-import-meta': 'error' },
    logLevel: 'warning',
    // Run on its own (`node lenix-verify.cjs verify …`) it is that command; required (by bin/lenix.js) it exports main.
    footer: {
      js: 'if (require.main === module) module.exports.main(process.argv).then((code) => { process.exitCode = code; });',
    },
  });
  const load = COMMAND_MODULES[b.like];
  if (!load) throw new Error(`bundle-cli: no command ${b.like}`);
  for (const [name, l] of Object.entries(COMMAND_MODULES))
    if (l === load) commands[name] = { bundle: b.out, source: b.source };
}
await writeFile('dist/lenix-bundles.json', `${JSON.stringify({ commands }, null, 2)}\n`);
