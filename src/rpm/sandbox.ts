import { spawn } from 'node:child_process';
import { lstatSync, readlinkSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { createSandboxInput, readSandboxOutput } from './sandbox-io.js';
import type { SandboxIdentity } from './sandbox-identity.js';

/**
 * The sandbox for untrusted package code (spec parsing, rpmbuild, the test root). bubblewrap builds a new root
 * from almost nothing: the host's /usr read-only (with the /bin, /lib, ... links), a generated /etc of
 * non-secret files, a private /proc and /dev, and one writable file system, a size-limited tmpfs at /tmp that
 * holds the work folder. Nothing else of the host is mounted: not /, /home, /root, /var, /srv, /opt, mounted
 * volumes or the agent's own folders, so there is nothing to hide and nothing to uncover.
 *
 * It starts as an unprivileged host user (see sandbox-identity.ts) in new user, PID, network, IPC, UTS and
 * cgroup namespaces, so no process inside holds a capability on the host. Inputs come in as a tar stream on
 * stdin (prepared by the agent from files it wrote itself) and results go out as a tar stream on fd 3 that the
 * agent reads back as plain files: no process outside ever opens a path that package code could have made a
 * symbolic link. stdout and stderr are one pipe, so the log keeps the order in which things were written.
 */
export interface SandboxLimits {
  /** Wall-clock limit; the whole process tree is killed when it passes. */
  readonly timeoutMs: number;
  /** RLIMIT_AS of every process inside. */
  readonly memoryBytes: number;
  /** Size of the only writable file system (the tmpfs at /tmp holding the work folder). */
  readonly diskBytes: number;
  /** RLIMIT_NPROC: processes of the sandbox's host user (a fork bomb stops there). */
  readonly processes: number;
  /** RLIMIT_NOFILE of every process inside. */
  readonly openFiles: number;
  /** Log bytes (stdout and stderr together); past this the output is cut and the run stopped. */
  readonly logBytes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  timeoutMs: 3_600_000,
  memoryBytes: 8 * 1024 ** 3,
  diskBytes: 8 * 1024 ** 3,
  processes: 4096,
  openFiles: 4096,
  logBytes: 64 * 1024 ** 2,
};

export interface SandboxRun {
  readonly identity: SandboxIdentity;
  readonly limits: SandboxLimits;
  /**
   * 'user': an unprivileged uid inside, no capabilities, no further user namespaces (builds, spec parsing).
   * 'root': uid 0 inside, with capabilities that reach only the sandbox's own user namespace, whose ids map to
   * the unprivileged host user and its subordinate ids (the test root: overlay mounts, chroot, chown).
   */
  readonly inside: 'user' | 'root';
  /** Run in SANDBOX_WORK once the inputs are unpacked there under `in/`. */
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly hostname: string;
  /** A host folder the caller filled itself; streamed in as a tar and unpacked at SANDBOX_WORK/in. */
  readonly inputDir?: string;
  /** After a successful run, regular files under `from` (inside) are written flat into the host folder `to`. */
  readonly output?: { readonly from: string; readonly to: string; readonly accept: (name: string) => boolean };
  readonly onOutput: (chunk: Buffer) => void;
  readonly signal?: AbortSignal;
}

/** One line for logs. */
export function describeLimits(l: SandboxLimits): string {
  const mib = (n: number) => `${Math.round(n / 1024 ** 2)} MiB`;
  return `${Math.round(l.timeoutMs / 1000)} s, memory ${mib(l.memoryBytes)}, disk ${mib(l.diskBytes)}, ${l.processes} processes, ${l.openFiles} open files, log ${mib(l.logBytes)}`;
}

export type SandboxResult =
  | { readonly kind: 'exited'; readonly code: number; readonly diskFull: boolean; readonly outputs: readonly string[] }
  | {
      readonly kind: 'killed';
      readonly why: 'timeout' | 'cancelled' | 'signal' | 'log-limit';
      readonly signal: string | null;
    };

export const BWRAP = '/usr/bin/bwrap';
/**
 * Where the work folder is inside the sandbox: in the size-limited /tmp, at a fixed path as mock's /builddir,
 * so that host paths stay out of logs and packages and paths compiled into binaries are the same on every node.
 */
export const SANDBOX_WORK = '/tmp/builddir';
/** The uid and gid of the build user inside ('user' sandboxes), as mock's mockbuild. */
export const SANDBOX_UID = 1000;

/** Capabilities of the test root's "root" inside its own user namespace (nothing of them reaches the host). */
const ROOT_CAPS = [
  'SYS_ADMIN',
  'SYS_CHROOT',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'CHOWN',
  'FOWNER',
  'FSETID',
  'SETUID',
  'SETGID',
  'SETFCAP',
  'KILL',
];

/**
 * Host files under /etc that tools read and that hold no secret: the alternatives links Debian's /usr/bin
 * points through, rpm's macros, the dynamic linker's cache, interpreter configuration, libmagic. Whatever is
 * not listed (shadow, ssh, ssl/private, sudoers, machine-id, dnf and yum configuration with proxy passwords or
 * repository credentials, ...) does not exist inside.
 */
const HOST_ETC = [
  'alternatives',
  'rpm',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'perl',
  'magic',
  'magic.mime',
  'mime.types',
  'os-release',
  'debian_version',
  'redhat-release',
  'system-release',
  'system-release-cpe',
  'crypto-policies',
  'xdg',
  'rpmlint',
  'pki/rpm-gpg',
  'shells',
  'login.defs',
  'protocols',
  'services',
];

/** Generated /etc files: the sandbox's own users, no name service, no resolver. */
export function generatedEtc(inside: SandboxRun['inside']): Record<string, string> {
  const builder =
    inside === 'user' ? [`builder:x:${SANDBOX_UID}:${SANDBOX_UID}:Lenix build user:${SANDBOX_WORK}:/bin/bash`] : [];
  return {
    passwd: [
      'root:x:0:0:root:/root:/bin/bash',
      ...builder,
      'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
      '',
    ].join('\n'),
    group: ['root:x:0:', ...(inside === 'user' ? [`builder:x:${SANDBOX_UID}:`] : []), 'nogroup:x:65534:', ''].join(
      '\n',
    ),
    hosts: '127.0.0.1 localhost\n::1 localhost\n',
    'resolv.conf': '# no network in the sandbox\n',
    'nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files\n',
  };
}

/** /bin, /lib, ... as on the host: links into /usr on merged-/usr systems, read-only binds elsewhere. */
function rootLinks(): string[] {
  const args: string[] = [];
  for (const d of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
    try {
      const st = lstatSync(`/${d}`);
      if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(`/${d}`), `/${d}`);
      else if (st.isDirectory()) args.push('--ro-bind', `/${d}`, `/${d}`);
    } catch {
      /* not on this host */
    }
  }
  return args;
}

function hostEtc(): string[] {
  const present = new Set(readdirSync('/etc'));
  const args: string[] = [];
  for (const name of HOST_ETC) {
    const top = name.split('/')[0]!;
    if (!present.has(top)) continue;
    try {
      lstatSync(`/etc/${name}`);
      args.push('--ro-bind', `/etc/${name}`, `/etc/${name}`);
    } catch {
      /* absent */
    }
  }
  for (const name of present)
    if (/^python3(\.\d+)?$/.test(name)) args.push('--ro-bind', `/etc/${name}`, `/etc/${name}`);
  return args;
}

let hostLayout: { links: string[]; etc: string[] } | null = null;
function layout(): { links: string[]; etc: string[] } {
  hostLayout ??= { links: rootLinks(), etc: hostEtc() };
  return hostLayout;
}

/** File descriptors inside the sandbox (besides 0 = inputs, 1 and 2 = the log). */
const FD_OUTPUT = 3;
const FD_STATUS = 4;
const FD_INFO = 5;
const FD_BLOCK = 6;
const FD_ETC = 7;

/**
 * The trusted part that runs first inside: one pipe for the log, inputs unpacked, the command run without the
 * output and status channels (so package code cannot forge either), then outputs and the free space reported.
 */
const WRAPPER = String.raw`set -u
exec 2>&1
W=${SANDBOX_WORK}
out=$1 input=$2 mem=$3 files=$4 procs=$5; shift 5
# Limits for everything package code starts. Set here, inside the sandbox's own user namespace, RLIMIT_NPROC
# counts this sandbox's processes only (the kernel counts per user namespace), so a fork bomb cannot starve
# other sandboxes of the same host user.
ulimit -S -H -v "$mem" -n "$files" -u "$procs" -c 0 || { echo "lenix: cannot set the sandbox's limits"; exit 125; }
mkdir -p "$W/in" || exit 125
if [ "$input" = 1 ] && ! tar -x --no-same-owner -C "$W/in" -f -; then echo "lenix: the sandbox could not unpack its inputs"; exit 125; fi
exec 0</dev/null 5>&- 6>&- 7>&- 8>&- 9>&- 10>&- 11>&- 12>&-
cd "$W" || exit 125
"$@" ${FD_OUTPUT}>&- ${FD_STATUS}>&-
rc=$?
cd /
if [ "$rc" -eq 0 ] && [ -n "$out" ]; then
  if [ -d "$out" ]; then tar -C "$out" -cf - . >&${FD_OUTPUT} || rc=126; else echo "lenix: no output folder $out"; fi
fi
exec ${FD_OUTPUT}>&-
avail=-1
[ "$rc" -ne 0 ] && avail=$(stat -f -c '%a*%S' /tmp 2>/dev/null) && avail=$(( avail ))
echo "rc=$rc avail=$avail" >&${FD_STATUS}
exit "$rc"
`;

export interface BwrapPlan {
  readonly args: string[];
  /** Generated /etc files, one per fd from FD_ETC on, in order. */
  readonly etc: [string, string][];
  /** The agent writes the uid/gid maps itself (subordinate range) and then releases the sandbox. */
  readonly mapsByAgent: boolean;
}

/** The bubblewrap command line (pure apart from reading the host's /usr links and /etc names once). */
export function bwrapArgs(
  run: Pick<SandboxRun, 'identity' | 'limits' | 'inside' | 'command' | 'env' | 'hostname' | 'output' | 'inputDir'>,
): BwrapPlan {
  const { links, etc } = layout();
  const mapsByAgent = run.inside === 'root' && run.identity.kind === 'system-user' && run.identity.subordinate !== null;
  const files = Object.entries(generatedEtc(run.inside));
  const args = [
    '--die-with-parent',
    '--new-session',
    '--unshare-user',
    '--unshare-pid',
    '--unshare-net',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--hostname',
    run.hostname,
    // Builds may not make user namespaces of their own. The test root needs its mount namespace's own user
    // namespace for overlay mounts and chroot, which --disable-userns would nest it away from.
    ...(run.inside === 'user'
      ? ['--disable-userns', '--uid', String(SANDBOX_UID), '--gid', String(SANDBOX_UID)]
      : ['--uid', '0', '--gid', '0', ...ROOT_CAPS.flatMap((c) => ['--cap-add', `CAP_${c}`])]),
    ...(mapsByAgent ? ['--info-fd', String(FD_INFO), '--userns-block-fd', String(FD_BLOCK)] : []),
    '--ro-bind',
    '/usr',
    '/usr',
    ...links,
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    '--size',
    String(run.limits.diskBytes),
    '--tmpfs',
    '/tmp',
    '--size',
    String(Math.min(run.limits.diskBytes, 64 * 1024 ** 2)),
    '--tmpfs',
    '/dev/shm',
    '--dir',
    '/var',
    '--symlink',
    '../tmp',
    '/var/tmp',
    '--dir',
    '/var/lib/rpm',
    '--dir',
    '/run',
    '--dir',
    '/etc',
    ...files.flatMap(([name], i) => ['--perms', '0644', '--ro-bind-data', String(FD_ETC + i), `/etc/${name}`]),
    ...etc,
    '--remount-ro',
    '/',
    '--chdir',
    '/',
    '--clearenv',
    ...Object.entries(run.env).flatMap(([k, v]) => ['--setenv', k, v]),
    '--',
    '/bin/bash',
    '-c',
    WRAPPER,
    'lenix-sandbox',
    run.output?.from ?? '',
    run.inputDir ? '1' : '0',
    String(Math.floor(run.limits.memoryBytes / 1024)),
    String(run.limits.openFiles),
    String(run.limits.processes),
    ...run.command,
  ];
  return { args, etc: files, mapsByAgent };
}

/** What starts bubblewrap: as root, drop to the sandbox user first (no capability, no supplementary group). */
export function launcher(identity: SandboxIdentity): string[] {
  switch (identity.kind) {
    case 'system-user':
      return [
        'setpriv',
        `--reuid=${identity.uid}`,
        `--regid=${identity.gid}`,
        '--clear-groups',
        '--inh-caps=-all',
        '--bounding-set=-all',
        '--',
      ];
    case 'current-user':
      return [];
  }
}

/** uid_map/gid_map lines for a test root: 0 is the sandbox user itself, 1.. its subordinate ids. */
export function subordinateMaps(identity: Extract<SandboxIdentity, { kind: 'system-user' }>): {
  uid: string;
  gid: string;
} {
  const s = identity.subordinate!;
  return { uid: `0 ${identity.uid} 1\n1 ${s.uid} ${s.count}\n`, gid: `0 ${identity.gid} 1\n1 ${s.gid} ${s.count}\n` };
}

export function runSandboxed(run: SandboxRun): Promise<SandboxResult> {
  const plan = bwrapArgs(run);
  const [cmd, ...pre] = [...launcher(run.identity), BWRAP];
  const stdio: ('pipe' | 'ignore')[] = [
    run.inputDir ? 'pipe' : 'ignore',
    'pipe',
    'pipe',
    'pipe',
    'pipe',
    plan.mapsByAgent ? 'pipe' : 'ignore',
    plan.mapsByAgent ? 'pipe' : 'ignore',
    ...plan.etc.map(() => 'pipe' as const),
  ];
  const child = spawn(cmd!, [...pre, ...plan.args], { stdio, detached: true });
  const fd = (n: number) => child.stdio[n] as (Readable & Writable) | null;

  let why: 'timeout' | 'cancelled' | 'log-limit' | null = null;
  const kill = (reason: 'timeout' | 'cancelled' | 'log-limit') => {
    if (why !== null) return;
    why = reason;
    // bwrap runs with --die-with-parent and the sandbox's PID 1 takes every process in the namespace with it,
    // so killing bwrap's process group ends the whole tree.
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };

  let logged = 0;
  const onLog = (chunk: Buffer) => {
    if (why === 'log-limit') return;
    const room = run.limits.logBytes - logged;
    if (chunk.length <= room) {
      logged += chunk.length;
      run.onOutput(chunk);
      return;
    }
    if (room > 0) run.onOutput(chunk.subarray(0, room));
    logged = run.limits.logBytes;
    run.onOutput(
      Buffer.from(
        `\nlenix: the log reached its limit of ${run.limits.logBytes} bytes; output cut here and the run stopped\n`,
      ),
    );
    kill('log-limit');
  };
  child.stdout!.on('data', onLog);
  child.stderr!.on('data', onLog);
  for (const n of [0, FD_BLOCK, ...plan.etc.map((_, i) => FD_ETC + i)]) fd(n)?.on('error', () => undefined);

  // Generated /etc files: bwrap reads each whole during set-up.
  for (const [i, [, text]] of plan.etc.entries()) fd(FD_ETC + i)!.end(text);

  // The test root's id maps: bwrap reports its child's pid and waits until the maps are written.
  if (plan.mapsByAgent && run.identity.kind === 'system-user') {
    const identity = run.identity;
    let info = '';
    const onInfo = (d: Buffer) => {
      info += d.toString('utf8');
      const m = /"child-pid"\s*:\s*(\d+)/.exec(info);
      if (!m) return;
      fd(FD_INFO)!.off('data', onInfo);
      const maps = subordinateMaps(identity);
      void writeFile(`/proc/${m[1]}/uid_map`, maps.uid)
        .then(() => writeFile(`/proc/${m[1]}/gid_map`, maps.gid))
        .then(() => fd(FD_BLOCK)!.end('1'))
        .catch((err: Error) => {
          run.onOutput(Buffer.from(`lenix: cannot map the sandbox's ids: ${err.message}\n`));
          kill('cancelled');
        });
    };
    fd(FD_INFO)!.on('data', onInfo);
  }

  // Both settle on their own (a rejection is read after the process closes, never left unhandled).
  const inputDone = settle(run.inputDir ? createSandboxInput(run.inputDir, fd(0)!) : Promise.resolve());
  const outputs = settle(
    run.output
      ? readSandboxOutput(fd(FD_OUTPUT)!, run.output.to, run.output.accept, run.limits.diskBytes)
      : drain(fd(FD_OUTPUT)!),
  );
  let status = '';
  fd(FD_STATUS)!.on('data', (d: Buffer) => {
    if (status.length < 256) status += d.toString('utf8');
  });

  const timer = setTimeout(() => kill('timeout'), run.limits.timeoutMs);
  const onAbort = () => kill('cancelled');
  run.signal?.addEventListener('abort', onAbort, { once: true });
  if (run.signal?.aborted) onAbort();

  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      run.signal?.removeEventListener('abort', onAbort);
      void Promise.all([inputDone, outputs]).then(([input, out]) => {
        if (why !== null) return resolve({ kind: 'killed', why, signal });
        if (code === null) return resolve({ kind: 'killed', why: 'signal', signal });
        const m = /rc=(\d+) avail=(-?\d+)/.exec(status);
        const diskFull =
          m !== null &&
          Number(m[1]) !== 0 &&
          Number(m[2]) >= 0 &&
          Number(m[2]) < Math.min(1024 ** 2, run.limits.diskBytes / 100);
        if (input.status === 'rejected')
          run.onOutput(Buffer.from(`lenix: inputs not delivered: ${(input.reason as Error).message}\n`));
        // A refused output stream also fails the wrapper's tar (the agent stopped reading): say why it was refused.
        if (out.status === 'rejected') {
          run.onOutput(Buffer.from(`lenix: outputs refused: ${(out.reason as Error).message}\n`));
          return resolve({ kind: 'exited', code: code === 0 ? 126 : code, diskFull, outputs: [] });
        }
        resolve({ kind: 'exited', code, diskFull, outputs: code === 0 ? out.value : [] });
      });
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      run.onOutput(Buffer.from(`lenix: cannot start the sandbox: ${err.message}\n`));
      resolve({ kind: 'exited', code: 127, diskFull: false, outputs: [] });
    });
  });
}

function settle<T>(p: Promise<T>): Promise<PromiseSettledResult<T>> {
  return p.then(
    (value) => ({ status: 'fulfilled' as const, value }),
    (reason: unknown) => ({ status: 'rejected' as const, reason }),
  );
}

function drain(stream: Readable): Promise<string[]> {
  stream.resume();
  return Promise.resolve([]);
}
