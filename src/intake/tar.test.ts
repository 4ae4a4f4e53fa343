import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { indexTar } from './tar.js';

const run = promisify(execFile);

test('a source archive is indexed without unpacking: files, links, and the small files asked for', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-tar-'));
  try {
    const tree = path.join(dir, 'tree');
    await mkdir(path.join(tree, 'tests'), { recursive: true });
    await writeFile(path.join(tree, 'p.spec'), 'Name: p\n');
    await writeFile(path.join(tree, '.p.metadata'), `${'ab'.repeat(32)} SOURCES/p.tar.gz\n`);
    await writeFile(path.join(tree, 'tests', 'run.sh'), '#!/bin/sh\n');
    await symlink('/root', path.join(tree, 'SOURCES'));
    await run('tar', ['-cf', path.join(dir, 'a.tar'), '-C', tree, '.']);
    const index = await indexTar(createReadStream(path.join(dir, 'a.tar')), (f) => f.endsWith('.metadata'));
    assert.deepEqual([...index.files].sort(), ['.p.metadata', 'p.spec', 'tests/run.sh']);
    assert.deepEqual([...index.symlinks], ['SOURCES']);
    assert.deepEqual([...index.contents.keys()], ['.p.metadata']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('bytes that are not a tar archive are refused with a code', async () => {
  await assert.rejects(
    indexTar(Readable.from([Buffer.from('not a tar archive at all, just text'.repeat(40))]), () => false),
    { code: 'GIT_FAILED' },
  );
});
