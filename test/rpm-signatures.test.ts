import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { exportPublicKey, generateKey } from '../src/crypto/gpg.js';
import { bothSignaturesOk, rpmCheckSignatures, rpmsign } from '../src/rpm/tools.js';
import { specWith } from './support/cli.js';

const run = promisify(execFile);
const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-rpmsig-'));
after(() => rm(dir, { recursive: true, force: true }));

/** A noarch package built with rpmbuild, unsigned. */
async function build(name: string): Promise<string> {
  const spec = path.join(dir, `${name}.spec`);
  await writeFile(spec, specWith(name, 'true'));
  await run('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${path.join(dir, 'top')}`, spec]);
  return path.join(dir, 'top', 'RPMS', 'noarch', `${name}-1.0-1.noarch.rpm`);
}

test('one rpmkeys run checks several packages, each judged on its own part of the output', async () => {
  const keys = path.join(dir, 'keys');
  const key = await generateKey(keys, 'sigtest', 'rsa4096');
  const [a, b, c] = await Promise.all([build('siga'), build('sigb'), build('sigc')]);
  // a and c signed; b left unsigned, and a copy of a with one payload byte flipped after signing.
  await rpmsign([a!, c!], { fingerprint: key.fingerprint, gnupgHome: keys });
  const flipped = path.join(dir, 'flipped.rpm');
  await copyFile(a!, flipped);
  const { stdout: size } = await run('stat', ['-c', '%s', flipped]);
  await run('sh', ['-c', `printf 'X' | dd of="${flipped}" bs=1 seek=${Number(size) - 20} conv=notrunc status=none`]);
  const pub = await exportPublicKey(keys, key.fingerprint);

  const files = [b!, a!, flipped, c!];
  const checks = await rpmCheckSignatures(pub, files);
  assert.deepEqual(
    files.map((f) => bothSignaturesOk(checks.get(f) ?? '')),
    [false, true, false, true],
  );
  for (const f of files) assert.ok(checks.get(f)!.startsWith(`${f}:`), `${f}'s part starts with its own name`);
  // The same verdicts one package at a time.
  for (const f of files)
    assert.equal(bothSignaturesOk((await rpmCheckSignatures(pub, [f])).get(f)!), bothSignaturesOk(checks.get(f)!));
  assert.equal(
    (await rpmCheckSignatures(pub, [path.join(dir, 'missing.rpm')])).get(path.join(dir, 'missing.rpm')),
    'failed',
  );
});
