#!/usr/bin/env node
// Entry point for `lenix` (npx lenix, npm install -g). The TypeScript is compiled to dist/ by `npm run build`.
import { main } from '../dist/src/cli/main.js';
main(process.argv).then((code) => {
  process.exitCode = code;
});
