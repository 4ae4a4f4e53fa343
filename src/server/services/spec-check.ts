import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { LenixError } from '../../core/errors.js';
import type { GitMirror } from '../../intake/git.js';
import type { SandboxIdentity } from '../../rpm/sandbox-identity.js';
import { SANDBOX_WORK, runSandboxed, type SandboxLimits } from '../../rpm/sandbox.js';

export interface SpecSummary {
  readonly name: string;
  readonly evr: string;
}

/**
 * Parse a spec at a commit before a build is accepted. Spec files are untrusted (`%(...)` and `%{lua:...}`
 * run code while parsing), and this runs on the server, so rpmspec gets the same sandbox as builds: an
 * unprivileged user, no network, nothing of the host but /usr and a generated /etc, and the source tree
 * unpacked only inside it.
 */
export async function checkSpec(mirror: GitMirror, commit: string, specPath: string, sandbox: { identity: SandboxIdentity; limits: SandboxLimits }): Promise<SpecSummary> {
  const work = await mkdtemp(path.join(tmpdir(), 'lenix-spec-'));
  try {
    const input = path.join(work, 'in');
    await mkdir(input);
    await pipeline(mirror.archive(commit), createWriteStream(path.join(input, 'source.tar')));
    const tree = `${SANDBOX_WORK}/tree`;
    const sourceDir = path.posix.dirname(specPath) === 'SPECS' ? `${tree}/SOURCES` : tree;
    let out = '';
    const result = await runSandboxed({
      identity: sandbox.identity,
      limits: sandbox.limits,
      inside: 'user',
      command: [
        'bash',
        '-c',
        'set -e; mkdir tree; tar -x --no-same-owner -f in/source.tar -C tree; cd tree; exec "$@"',
        'lenix-spec',
        'rpmspec',
        '-q',
        '--srpm',
        '--define',
        `_topdir ${SANDBOX_WORK}`,
        '--define',
        `_sourcedir ${sourceDir}`,
        '--qf',
        'LENIX:%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}\\n',
        path.posix.join(tree, specPath),
      ],
      env: { PATH: '/usr/bin:/bin', HOME: SANDBOX_WORK, LC_ALL: 'C.UTF-8' },
      hostname: 'lenix-spec',
      inputDir: input,
      onOutput: (c) => {
        if (out.length < 64 * 1024) out += c.toString('utf8');
      },
    });
    const line = out.split('\n').find((l) => l.startsWith('LENIX:'));
    if (result.kind !== 'exited' || result.code !== 0 || !line) {
      const why = out
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('LENIX:'))
        .pop();
      throw new LenixError('SPEC_INVALID', `${specPath} does not parse: ${why ?? (result.kind === 'killed' ? `rpmspec ${result.why}` : 'rpmspec failed')}`.slice(0, 1000));
    }
    const [name, epoch, version, release] = line.slice('LENIX:'.length).split('|');
    const e = epoch && epoch !== '(none)' ? `${epoch}:` : '';
    return { name: name!, evr: `${e}${version}-${release}` };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
