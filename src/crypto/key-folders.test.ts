import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { keyFolder, useKeyFolderBase } from './gpg.js';

test("key folders live in the given folder; those of processes no longer running are removed, a running one's kept", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-key-folders-'));
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    // A process that has ended (its id is free again, as after a kill -9), one that still runs.
    const ended = spawn('true', { stdio: 'ignore' });
    await once(ended, 'exit');
    const base = path.join(dir, 'key-folders');
    const left = path.join(base, `${ended.pid}-rpmkeys-abc123`);
    const live = path.join(base, `${sleeper.pid}-rpmkeys-def456`);
    const other = path.join(base, 'not-a-key-folder');
    for (const d of [left, live, other]) await mkdir(path.join(d, 'db'), { recursive: true });
    await writeFile(path.join(left, 'key.asc'), 'key');

    await useKeyFolderBase(dir);
    assert.deepEqual((await readdir(base)).sort(), [path.basename(live), path.basename(other)].sort());

    // Folders made from now on are in the base, named after this process, and filled once.
    let fills = 0;
    const key = `test key ${Math.random()}`;
    const made = await keyFolder('test', key, async (d) => {
      fills++;
      await writeFile(path.join(d, 'key.asc'), key);
    });
    assert.equal(path.dirname(made), base);
    assert.ok(path.basename(made).startsWith(`${process.pid}-test-`));
    assert.equal((await stat(made)).mode & 0o777, 0o700);
    assert.equal(await keyFolder('test', key, async () => void fills++), made);
    assert.equal(fills, 1);
    // Removed under the process (its data folder deleted while it runs): made and filled again.
    await rm(made, { recursive: true });
    const again = await keyFolder('test', key, async () => void fills++);
    assert.notEqual(again, made);
    assert.equal(path.dirname(again), base);
    assert.equal(fills, 2);
  } finally {
    sleeper.kill();
    await rm(dir, { recursive: true, force: true });
  }
});
