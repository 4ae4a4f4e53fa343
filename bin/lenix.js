#!/usr/bin/env node
'use strict';
// Entry point for `lenix` (npx lenix, npm install -g); CommonJS (bin/package.json). `npm run build` compiles the
// TypeScript to dist/ and bundles `lenix verify` into dist/lenix-verify.cjs (scripts/bundle-verifier.mjs), which
// runs `lenix verify …` when it is at least as new as the compiled code; anything else loads the whole CLI.
const { statSync } = require('node:fs');
const path = require('node:path');

function verifierBundle() {
  if (process.argv[2] !== 'verify') return null;
  const dist = path.join(__dirname, '..', 'dist');
  try {
    const bundle = path.join(dist, 'lenix-verify.cjs');
    return statSync(bundle).mtimeMs >= statSync(path.join(dist, 'src', 'cli', 'verify-main.js')).mtimeMs
      ? bundle
      : null;
  } catch {
    return null;
  }
}

const bundle = verifierBundle();
const entry = bundle ? Promise.resolve(require(bundle)) : import('../dist/src/cli/main.js');
entry
  .then(({ main }) => main(process.argv))
  .then((code) => {
    process.exitCode = code;
  });
