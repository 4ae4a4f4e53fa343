import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { LenixError } from '../src/core/errors.js';
import { GitMirror } from '../src/intake/git.js';
import { gitRepo } from './support/cli.js';

const run = promisify(execFile);
const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-git-'));
after(() => rm(dir, { recursive: true, force: true }));

/** A repository with a spec, a nested file and a symbolic link, mirrored; the commit and the mirror. */
async function mirrored(name: string): Promise<{ sha: string; mirror: GitMirror }> {
  const repo = path.join(dir, name);
  await gitRepo(repo, { 'hello.spec': 'Name: hello\n', 'tests/run': '#!/bin/sh\n' });
  await symlink('hello.spec', path.join(repo, 'link.spec'));
  await run('git', ['add', 'link.spec'], { cwd: repo });
  await run('git', ['-c', 'user.name=T', '-c', 'user.email=t@lenix.invalid', 'commit', '-q', '-m', 'link'], {
    cwd: repo,
  });
  const sha = (await run('git', ['rev-parse', 'HEAD'], { cwd: repo })).stdout.trim();
  return { sha, mirror: await GitMirror.create(repo, path.join(dir, `${name}.git`)) };
}

/** The paths in a tar stream's listing. */
async function tarPaths(tar: NodeJS.ReadableStream): Promise<string[]> {
  const file = path.join(dir, `t${Math.random()}.tar`);
  await pipeline(tar, createWriteStream(file));
  return (await run('tar', ['-tf', file])).stdout.split('\n').filter(Boolean).sort();
}

test('reads by commit id give the tree, files and archive of that commit, the same every time', async () => {
  const { sha, mirror } = await mirrored('a');
  for (let i = 0; i < 2; i++) {
    assert.deepEqual((await mirror.listFiles(sha)).sort(), ['hello.spec', 'link.spec', 'tests/run']);
    assert.deepEqual(await mirror.listSymlinks(sha), ['link.spec']);
    assert.equal(await mirror.readFile(sha, 'hello.spec'), 'Name: hello\n');
    assert.deepEqual(await tarPaths(mirror.archive(sha)), ['hello.spec', 'link.spec', 'tests/', 'tests/run']);
  }
  // A kept read still honours the caller's size limit.
  await assert.rejects(mirror.readFile(sha, 'hello.spec', 4), (err: unknown) => {
    assert.ok(err instanceof LenixError);
    assert.equal(err.code, 'GIT_FAILED');
    return true;
  });
});

test('a failed read is not kept, and reads by branch name follow the branch', async () => {
  const { sha, mirror } = await mirrored('b');
  for (let i = 0; i < 2; i++) {
    await assert.rejects(mirror.readFile(sha, 'missing.spec'), (err: unknown) => {
      assert.ok(err instanceof LenixError);
      assert.equal(err.code, 'GIT_FAILED');
      return true;
    });
  }
  assert.equal(await mirror.readFile('main', 'hello.spec'), 'Name: hello\n');
  // A new commit on the branch: the branch's read sees it, the old commit's read does not change.
  const repo = path.join(dir, 'b');
  assert.equal((await mirror.resolve('main')).sha, sha);
  const v2 = await gitRepo(repo, { 'hello.spec': 'Name: hello\nVersion: 2\n' }, 'v2');
  await mirror.fetch();
  assert.equal(await mirror.readFile('main', 'hello.spec'), 'Name: hello\nVersion: 2\n');
  assert.equal((await mirror.resolve('main')).sha, v2);
  assert.equal(await mirror.readFile(sha, 'hello.spec'), 'Name: hello\n');
  assert.equal((await mirror.resolve(sha)).subject, 'link');
});
