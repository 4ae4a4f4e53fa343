import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { LENIX_VERSION } from './version.js';

test('LENIX_VERSION is the version in package.json', async () => {
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  assert.equal(LENIX_VERSION, pkg.version);
});
