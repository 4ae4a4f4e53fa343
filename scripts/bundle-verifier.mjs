// Bundles `lenix verify` (dist/src/cli/verify-main.js and its libraries) into one CommonJS file,
// dist/lenix-verify.cjs, after tsc: part of `npm run build`. bin/lenix.js runs the verifier from it when the bundle
// is at least as new as the compiled CLI, and the whole CLI otherwise (a tsc run alone never leaves it stale).
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/src/cli/verify-main.js'],
  outfile: 'dist/lenix-verify.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // The verifier's own code never reads import.meta; a library that did would get undefined, so fail instead.
  logOverride: { 'empty-import-meta': 'error' },
  logLevel: 'warning',
  // Run on its own (`node lenix-verify.cjs verify …`) it is the verifier; required (by bin/lenix.js) it exports main.
  footer: {
    js: 'if (require.main === module) module.exports.main(process.argv).then((code) => { process.exitCode = code; });',
  },
});
