import type { BuildrootRecord } from '../../core/protocol.js';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The buildroot record: what built the package. Stored with each task for provenance and SBOMs. On EL hosts
 * it lists every installed rpm; on Debian hosts the Debian packages of the toolchain (the rpm database there
 * is empty, so installed rpms say nothing).
 */

const TOOLS: readonly [string, string[]][] = [
  ['rpm', ['rpm', '--version']],
  ['rpmbuild', ['rpmbuild', '--version']],
  ['gcc', ['gcc', '--version']],
  ['make', ['make', '--version']],
  ['bwrap', ['bwrap', '--version']],
  ['tar', ['tar', '--version']],
  ['bash', ['bash', '--version']],
];

const DEBIAN_TOOLCHAIN = [
  'rpm',
  'gcc',
  'g++',
  'cpp',
  'binutils',
  'make',
  'libc6',
  'libc6-dev',
  'bubblewrap',
  'bash',
  'coreutils',
  'tar',
  'gzip',
  'xz-utils',
  'bzip2',
  'zstd',
  'findutils',
  'sed',
  'gawk',
  'grep',
  'patch',
  'diffutils',
  'file',
  'debugedit',
  'elfutils',
];

async function firstLine(cmd: string[]): Promise<string | null> {
  try {
    const { stdout } = await run(cmd[0]!, cmd.slice(1), { timeout: 10_000 });
    return stdout.split('\n')[0]?.trim() ?? null;
  } catch {
    return null;
  }
}

async function osName(): Promise<string> {
  try {
    const text = await readFile('/etc/os-release', 'utf8');
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export async function describeBuildroot(arch: string): Promise<BuildrootRecord> {
  const tools: Record<string, string> = {};
  for (const [name, cmd] of TOOLS) {
    const v = await firstLine(cmd);
    if (v) tools[name] = v;
  }
  let packageManager: BuildrootRecord['packageManager'] = 'none';
  let packages: { name: string; version: string }[] = [];
  if (existsSync('/etc/redhat-release')) {
    packageManager = 'rpm';
    const { stdout } = await run(
      'rpm',
      ['-qa', '--qf', '%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}.%{ARCH}\\n'],
      { maxBuffer: 32 * 1024 * 1024 },
    ).catch(() => ({ stdout: '' }));
    packages = parseLines(stdout);
  } else if (existsSync('/usr/bin/dpkg-query')) {
    packageManager = 'dpkg';
    const { stdout } = await run('dpkg-query', [
      '-W',
      '-f', // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
      '${Package} ${Version}\\n',
      ...DEBIAN_TOOLCHAIN,
    ]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
    packages = parseLines(stdout);
  }
  return {
    hostOs: await osName(),
    kernel: os.release(),
    arch,
    tools,
    packageManager,
    packages: packages.sort((a, b) => a.name.localeCompare(b.name)),
    sandbox:
      'bubblewrap as an unprivileged user: user, PID, network, IPC and UTS namespaces; only /usr and a generated /etc of the host, read-only; a size-limited tmpfs work folder',
  };
}

function parseLines(text: string): { name: string; version: string }[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(' '))
    .filter((p): p is [string, string] => p.length === 2 && p[0]!.length > 0)
    .map(([name, version]) => ({ name, version }));
}
