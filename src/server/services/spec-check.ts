import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, homedir } from 'node:os';
import path from 'node:path';
import { LenixError } from '../../core/errors.js';
import type { GitMirror } from '../../intake/git.js';
import { extractTar } from '../../intake/tar.js';
import { SANDBOX_WORK, runSandboxed } from '../../rpm/sandbox.js';

export interface SpecSummary {
  readonly name: string;
  readonly evr: string;
}

/**
 * Parse a spec at a commit before a build is accepted. Spec files are untrusted (macros run shell
 * commands), so rpmspec runs in the same sandbox as builds: no network, host read-only, the server's data
 * folder and $HOME hidden.
 */
export async function checkSpec(mirror: GitMirror, commit: string, specPath: string, opts: { hide: readonly string[]; timeoutMs: number }): Promise<SpecSummary> {
  const work = await mkdtemp(path.join(tmpdir(), 'lenix-spec-'));
  try {
    const tree = path.join(work, 'tree');
    await mkdir(tree);
    await extractTar(mirror.archive(commit), tree);
    const inTree = path.join(SANDBOX_WORK, 'tree');
    const spec = path.join(inTree, specPath);
    const sourceDir = path.dirname(specPath) === 'SPECS' ? path.join(inTree, 'SOURCES') : inTree;
    let out = '';
    const result = await runSandboxed({
      command: [
        'rpmspec',
        '-q',
        '--srpm',
        '--define',
        `_topdir ${SANDBOX_WORK}`,
        '--define',
        `_sourcedir ${sourceDir}`,
        '--qf',
        'LENIX:%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}\\n',
        spec,
      ],
      workDir: work,
      cwd: inTree,
      env: { PATH: '/usr/bin:/bin', HOME: homedir(), LC_ALL: 'C.UTF-8' },
      hostname: 'lenix-spec',
      hide: [...opts.hide, homedir()],
      timeoutMs: opts.timeoutMs,
      memoryBytes: 2 * 1024 * 1024 * 1024,
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
      throw new LenixError('SPEC_INVALID', `${specPath} does not parse: ${why ?? (result.kind === 'killed' ? `rpmspec ${result.why}` : 'rpmspec failed')}`);
    }
    const [name, epoch, version, release] = line.slice('LENIX:'.length).split('|');
    const e = epoch && epoch !== '(none)' ? `${epoch}:` : '';
    return { name: name!, evr: `${e}${version}-${release}` };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
