import { execFile } from 'node:child_process';
import type { StarterAnswer, StarterRequest } from './exec.js';

/**
 * The server's process starter (exec/exec.ts): runs each command it is sent with `execFile` and answers its output.
 * Its parent is the server that forked it, the only one that can send to it; it exits when the server goes.
 */
process.on('message', (m: StarterRequest) => {
  execFile(m.cmd, [...m.args], { ...m.opts, encoding: 'utf8' }, (err, stdout, stderr) => {
    const error = err
      ? {
          message: err.message,
          code: (err as { code?: string | number | null }).code,
          signal: err.signal ?? null,
          killed: err.killed,
        }
      : null;
    const answer: StarterAnswer = { id: m.id, stdout, stderr, error };
    process.send?.(answer);
  });
});
process.on('disconnect', () => process.exit(0));
