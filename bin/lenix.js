#!/usr/bin/env node
'use strict';
// Entry point for `lenix` (npx lenix, npm install -g); CommonJS (bin/package.json). `npm run build` compiles the
// TypeScript to dist/ and bundles some commands into one CommonJS file each (scripts/bundle-cli.mjs:
// dist/lenix-verify.cjs, dist/lenix-client.cjs, and dist/lenix-bundles.json, which says which command runs from
// which). A command runs from its bundle when the bundle is at least as new as its compiled entry point; anything
// else loads the whole CLI.
const { readFileSync, statSync } = require('node:fs');
const path = require('node:path');

/** The first word of the command line that is not a global option or its value (as src/cli/main.ts reads it). */
function commandWord(argv) {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--server' || a === '--token') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

function bundleFor(argv) {
  const word = commandWord(argv);
  if (word === undefined) return null;
  const dist = path.join(__dirname, '..', 'dist');
  try {
    const { commands } = JSON.parse(readFileSync(path.join(dist, 'lenix-bundles.json'), 'utf8'));
    const entry = Object.hasOwn(commands, word) ? commands[word] : null;
    if (!entry) return null;
    const bundle = path.join(dist, entry.bundle);
    return statSync(bundle).mtimeMs >= statSync(path.join(dist, entry.source)).mtimeMs ? bundle : null;
  } catch {
    return null;
  }
}

const bundle = bundleFor(process.argv);
const entry = bundle ? Promise.resolve(require(bundle)) : import('../dist/src/cli/main.js');
entry
  .then(({ main }) => main(process.argv))
  .then((code) => {
    process.exitCode = code;
  });
