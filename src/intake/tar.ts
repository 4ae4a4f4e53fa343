import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { LenixError } from '../core/errors.js';

/** Unpack a tar stream into `dir` with GNU tar, refusing absolute names and never restoring owners. */
export function extractTar(input: Readable, dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const tar = spawn('tar', ['-x', '--no-same-owner', '--no-same-permissions', '-C', dir], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    tar.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    input.on('error', (e) => {
      tar.kill();
      reject(new LenixError('GIT_FAILED', `source archive stream failed: ${e.message}`));
    });
    input.pipe(tar.stdin);
    tar.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new LenixError('GIT_FAILED', `tar could not unpack the source archive: ${err.trim().split('\n').pop() ?? code}`));
    });
  });
}
