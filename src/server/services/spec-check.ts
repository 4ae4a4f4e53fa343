import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { LenixError } from '../../core/errors.js';
import { macroDefines, PLATFORM_MACROS } from '../../core/protocol.js';
import { sourceDirOf } from '../../core/lookaside.js';
import type { GitMirror } from '../../intake/git.js';
import type { DeclaredPackage } from '../../store/records.js';
import type { SandboxIdentity } from '../../rpm/sandbox-identity.js';
import { SANDBOX_WORK, runSandboxed, type SandboxLimits } from '../../rpm/sandbox.js';

export interface SpecSummary {
  readonly name: string;
  readonly evr: string;
  /** The binary packages it declares, subpackages included (what uploads of its builds may be). */
  readonly packages: readonly DeclaredPackage[];
  /** With `deps`: its static BuildRequires and the Provides its packages declare (for ordering batches). */
  readonly buildRequires: readonly string[];
  readonly provides: readonly string[];
}

/** rpm package names: what `Name:` and `%package -n` accept, bounded. */
const PACKAGE_NAME = /^[A-Za-z0-9_+][A-Za-z0-9._+~^-]{0,254}$/;

/**
 * Parse a spec at a commit before a build is accepted. Spec files are untrusted (`%(...)` and `%{lua:...}`
 * run code while parsing), and this runs on the server, so rpmspec gets the same sandbox as builds: an
 * unprivileged user, no network, nothing of the host but /usr and a generated /etc, and the source tree
 * unpacked only inside it.
 */
export async function checkSpec(
  mirror: GitMirror,
  commit: string,
  specPath: string,
  sandbox: {
    identity: SandboxIdentity;
    limits: SandboxLimits;
    macros?: Readonly<Record<string, string>>;
    /** A platform's macro file, loaded as the SRPM task loads it (so the EVR is the one the build records). */
    platformMacros?: string | null;
    deps?: boolean;
  },
): Promise<SpecSummary> {
  const work = await mkdtemp(path.join(tmpdir(), 'lenix-spec-'));
  try {
    const input = path.join(work, 'in');
    await mkdir(input);
    await pipeline(mirror.archive(commit), createWriteStream(path.join(input, 'source.tar')));
    if (sandbox.platformMacros) await writeFile(path.join(input, PLATFORM_MACROS), sandbox.platformMacros);
    const tree = `${SANDBOX_WORK}/tree`;
    const sourceDir = path.posix.join(tree, sourceDirOf(specPath));
    let out = '';
    const result = await runSandboxed({
      identity: sandbox.identity,
      limits: sandbox.limits,
      inside: 'user',
      command: [
        'bash',
        '-c',
        [
          'set -e; mkdir tree; tar -x --no-same-owner -f in/source.tar -C tree; cd tree',
          'spec=$1; shift',
          `rpmspec -q --srpm "$@" --qf 'LENIX:%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}\\n' "$spec"`,
          `rpmspec -q "$@" --qf 'LENIXPKG:%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}\\n' "$spec"`,
          ...(sandbox.deps
            ? [
                `rpmspec -q --buildrequires "$@" "$spec" | sed 's/^/LENIXBR:/'`,
                `rpmspec -q --provides "$@" "$spec" | sed 's/^/LENIXPROV:/'`,
              ]
            : []),
        ].join('\n'),
        'lenix-spec',
        path.posix.join(tree, specPath),
        '--define',
        `_topdir ${SANDBOX_WORK}`,
        '--define',
        `_sourcedir ${sourceDir}`,
        ...(sandbox.platformMacros ? ['--load', `${SANDBOX_WORK}/in/${PLATFORM_MACROS}`] : []),
        ...macroDefines(sandbox.macros ?? {}),
      ],
      env: { PATH: '/usr/bin:/bin', HOME: SANDBOX_WORK, LC_ALL: 'C.UTF-8' },
      hostname: 'lenix-spec',
      inputDir: input,
      onOutput: (c) => {
        if (out.length < 256 * 1024) out += c.toString('utf8');
      },
    });
    const line = out.split('\n').find((l) => l.startsWith('LENIX:'));
    if (result.kind !== 'exited' || result.code !== 0 || !line) {
      const why = out
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !/^LENIX(PKG|BR|PROV)?:/.test(l))
        .pop();
      throw new LenixError(
        'SPEC_INVALID',
        `${specPath} does not parse: ${why ?? (result.kind === 'killed' ? `rpmspec ${result.why}` : 'rpmspec failed')}`.slice(
          0,
          1000,
        ),
      );
    }
    const source = nevr(line.slice('LENIX:'.length));
    const unexpanded = unexpandedMacro(source.evr);
    if (unexpanded)
      throw new LenixError(
        'SPEC_MACRO_UNDEFINED',
        `${specPath}: Version-Release ${source.evr.slice(0, 200)} still holds %${unexpanded}, which no macro file of this build defines`,
      );
    const packages = new Map<string, DeclaredPackage>();
    for (const l of out.split('\n'))
      if (l.startsWith('LENIXPKG:'))
        packages.set(nevr(l.slice('LENIXPKG:'.length)).name, nevr(l.slice('LENIXPKG:'.length)));
    if (packages.size === 0 || packages.size > 1000 || ![...packages.keys()].every((p) => PACKAGE_NAME.test(p))) {
      throw new LenixError('SPEC_INVALID', `${specPath} declares no usable binary package names`);
    }
    const tagged = (tag: string) =>
      [
        ...new Set(
          out
            .split('\n')
            .filter((l) => l.startsWith(tag))
            .map((l) => l.slice(tag.length).trim()),
        ),
      ]
        .filter(Boolean)
        .slice(0, 10_000);
    return {
      name: source.name,
      evr: source.evr,
      packages: [...packages.values()],
      buildRequires: tagged('LENIXBR:'),
      provides: tagged('LENIXPROV:'),
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The first macro an expanded string still holds (`%name`, `%{name}`, `%{?name}`), or null. */
export function unexpandedMacro(text: string): string | null {
  return /%\{?[?!]*([A-Za-z_][A-Za-z0-9_]*)/.exec(text)?.[1] ?? null;
}

/** `NAME|EPOCH|VERSION|RELEASE` as rpmspec's query format prints it (epoch `(none)` when unset). */
function nevr(text: string): DeclaredPackage {
  const [name, epoch, version, release] = text.trim().split('|');
  const e = epoch && epoch !== '(none)' ? `${epoch}:` : '';
  return { name: name ?? '', evr: `${e}${version}-${release}` };
}
