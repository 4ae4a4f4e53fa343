import os from 'node:os';
import { FOREIGN_ARCHES, ROOTS_CACHE, cachedRoots } from './system-roots.js';

/**
 * Make the emulated arches' test roots before the suite runs (scripts/test.sh). On a new machine they take about
 * 14 minutes under emulation (2 cores); made inside the multi-arch test file, that time counted against the
 * runner's per-file timeout (15 minutes) and the file was stopped just after they were ready. Made roots are kept
 * (system-roots.ts), so later runs skip this in a moment.
 */
if (os.arch() === 'x64') {
  const started = Date.now();
  const roots = await cachedRoots(FOREIGN_ARCHES);
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  console.log(`test roots in ${ROOTS_CACHE} ready in ${seconds} s: ${Object.keys(roots).join(', ')}`);
}
