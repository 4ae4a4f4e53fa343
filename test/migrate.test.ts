import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { MIGRATION_NAMES } from '../src/store/migrate.js';
import { freePort, lenix, Proc } from './support/cli.js';

const LAST = MIGRATION_NAMES[MIGRATION_NAMES.length - 1]!;

test('lenix migrate brings a database up to date once; a server with --no-migrate refuses an outdated one', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-migrate-'));
  try {
    const env = { LENIX_CONFIG: path.join(dir, 'none.json') };
    const port = String(await freePort());
    const refused = await lenix(['server', '--data', path.join(dir, 'data'), '--port', port, '--no-migrate'], env);
    assert.equal(refused.code, 7, refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(`^lenix: SCHEMA_OUTDATED: the database lacks 0001-initial, .*${LAST}: run lenix migrate$`, 'm'),
    );

    const first = await lenix(['migrate', '--data', path.join(dir, 'data')], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`^applied ${MIGRATION_NAMES.length}: 0001-initial, .*${LAST}$`, 'm'));
    const again = await lenix(['migrate', '--data', path.join(dir, 'data')], env);
    assert.equal(again.stdout, 'the database is up to date\n');

    const server = new Proc(['server', '--data', path.join(dir, 'data'), '--port', port, '--no-migrate'], env);
    try {
      const url = (await server.waitFor(/listening on (http:\S+)/))[1]!;
      assert.equal((await fetch(`${url}/api/v1/ready`)).status, 200);
    } finally {
      await server.stop('SIGTERM');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
