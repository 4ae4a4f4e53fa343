import { lstatSync, readlinkSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { SandboxIdentity } from './sandbox-identity.js';
import type { SandboxRun } from './sandbox-types.js';

/**
 * The bubblewrap command line of a sandbox run (sandbox.ts): the root it builds from almost nothing, the
 * namespaces, the wrapper script that sets limits inside and reports on its own channels, and the launcher
 * that drops to the sandbox user first.
 */
export const BWRAP = '/usr/bin/bwrap';
/**
 * Where the work folder is inside the sandbox: in the size-limited /tmp, at a fixed path as mock's /builddir,
 * so that host paths stay out of logs and packages and paths compiled into binaries are the same on every node.
 */
export const SANDBOX_WORK = '/tmp/builddir';
/** The uid and gid of the build user inside ('user' sandboxes), as mock's mockbuild. */
export const SANDBOX_UID = 1000;

/**
 * Capabilities of the test root's and buildroot's "root" inside its own user namespace (nothing of them reaches
 * the host). SYS_RESOURCE and SETPCAP are held only for the wrapper's first step, which sets that namespace's limit
 * of further user namespaces to 0 and then drops both for good before any package code runs.
 */
const ROOT_CAPS = [
  'SETPCAP',
  'SYS_RESOURCE',
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

/** /bin, /lib, ... as in the system root: links into /usr on merged-/usr systems, read-only binds elsewhere. */
function rootLinks(root: string): string[] {
  const args: string[] = [];
  for (const d of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
    try {
      const st = lstatSync(path.join(root, d));
      if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(path.join(root, d)), `/${d}`);
      else if (st.isDirectory()) args.push('--ro-bind', path.join(root, d), `/${d}`);
    } catch {
      /* not in this root */
    }
  }
  return args;
}

/**
 * The listed /etc files of the system root, bound read-only (bwrap follows a link to what it names). A link in a
 * system root other than the host's that names an absolute path is read as a path in that root, never the host's.
 */
function rootEtc(root: string): string[] {
  const etc = path.join(root, 'etc');
  const present = new Set(readdirSync(etc));
  const names = [...HOST_ETC, ...[...present].filter((n) => /^python3(\.\d+)?$/.test(n))];
  const args: string[] = [];
  for (const name of names) {
    if (!present.has(name.split('/')[0]!)) continue;
    try {
      const at = path.join(etc, name);
      const link = lstatSync(at).isSymbolicLink() ? readlinkSync(at) : null;
      const source = root !== '/' && link?.startsWith('/') ? path.join(root, link) : at;
      statSync(source);
      args.push('--ro-bind', source, `/etc/${name}`);
    } catch {
      /* absent */
    }
  }
  return args;
}

const layouts = new Map<string, { links: string[]; etc: string[] }>();
function layout(root: string): { links: string[]; etc: string[] } {
  let l = layouts.get(root);
  if (!l) {
    l = { links: rootLinks(root), etc: rootEtc(root) };
    layouts.set(root, l);
  }
  return l;
}

/** File descriptors inside the sandbox (besides 0 = inputs, 1 and 2 = the log). */
export const FD_OUTPUT = 3;
export const FD_STATUS = 4;
export const FD_INFO = 5;
export const FD_BLOCK = 6;
export const FD_ETC = 7;

/**
 * The trusted part that runs first inside: one pipe for the log, inputs unpacked, the command run without the
 * output and status channels (so package code cannot forge either), then outputs and the free space reported.
 */
const WRAPPER = String.raw`set -u
exec 2>&1
W=${SANDBOX_WORK}
out=$1 input=$2 mem=$3 files=$4 procs=$5 prepare=$6; shift 6
# Limits for everything package code starts. Set here, inside the sandbox's own user namespace, RLIMIT_NPROC
# counts this sandbox's processes only (the kernel counts per user namespace), so a fork bomb cannot starve
# other sandboxes of the same host user.
ulimit -S -H -v "$mem" -n "$files" -u "$procs" -c 0 || { echo "lenix: cannot set the sandbox's limits"; exit 125; }
mkdir -p "$W/in" || exit 125
# Roots ('root' sandboxes) may not make user namespaces of their own either; bubblewrap's --disable-userns cannot
# be combined with the agent writing the id maps, so the limit is set here, in the sandbox's own namespace.
# The capability that allowed it is then dropped for good, so that package code cannot raise the limit again.
drop=()
if [ "$EUID" = 0 ]; then # bash's own: no id process
  echo 0 > /proc/sys/user/max_user_namespaces || { echo "lenix: cannot forbid user namespaces"; exit 125; }
  drop=(setpriv --inh-caps=-sys_resource,-setpcap --ambient-caps=-sys_resource,-setpcap --bounding-set=-sys_resource,-setpcap --)
fi
# The caller's own preparation (never package code) runs before the inputs come: a sandbox started ahead of its
# task does it while it waits for them. It drops the same capabilities as the command: what it starts may run
# package code later (the tester's dnf runs scriptlets).
if [ -n "$prepare" ] && ! (cd "$W" && "${'$'}{drop[@]}" bash -c "$prepare" lenix-prepare </dev/null); then echo "lenix: the sandbox could not be prepared"; exit 125; fi
if [ "$input" = 1 ] && ! tar -x --no-same-owner -C "$W/in" -f -; then echo "lenix: the sandbox could not unpack its inputs"; exit 125; fi
exec 0</dev/null 5>&- 6>&- 7>&- 8>&- 9>&- 10>&- 11>&- 12>&- 13>&- 14>&- 15>&- 16>&-
cd "$W" || exit 125
"${'$'}{drop[@]}" "$@" ${FD_OUTPUT}>&- ${FD_STATUS}>&-
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
  /** Files made from texts (generated /etc files, then the run's own files), one per fd from FD_ETC on, in order. */
  readonly data: string[];
  /** The agent writes the uid/gid maps itself (subordinate range) and then releases the sandbox. */
  readonly mapsByAgent: boolean;
}

/** The bubblewrap command line (pure apart from reading the system root's /usr links and /etc names once). */
export function bwrapArgs(
  run: Pick<
    SandboxRun,
    | 'identity'
    | 'limits'
    | 'inside'
    | 'command'
    | 'env'
    | 'hostname'
    | 'output'
    | 'systemRoot'
    | 'binds'
    | 'files'
    | 'prepare'
  > & { readonly input?: boolean },
): BwrapPlan {
  const root = run.systemRoot ?? '/';
  const { links, etc } = layout(root);
  const mapsByAgent = run.inside === 'root' && run.identity.kind === 'system-user' && run.identity.subordinate !== null;
  const files = [
    ...Object.entries(generatedEtc(run.inside)).map(([name, text]) => [`/etc/${name}`, text] as const),
    ...Object.entries(run.files ?? {}),
  ];
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
    // Builds may not make user namespaces of their own. A root needs its mount namespace's own user namespace
    // for overlay mounts and chroot, which --disable-userns would nest it away from: the wrapper forbids them.
    ...(run.inside === 'user'
      ? ['--disable-userns', '--uid', String(SANDBOX_UID), '--gid', String(SANDBOX_UID)]
      : ['--uid', '0', '--gid', '0', ...ROOT_CAPS.flatMap((c) => ['--cap-add', `CAP_${c}`])]),
    ...(mapsByAgent ? ['--info-fd', String(FD_INFO), '--userns-block-fd', String(FD_BLOCK)] : []),
    '--ro-bind',
    path.join(root, 'usr'),
    '/usr',
    // /bin/sh is bash, as on EL (specs use pushd and [[ ]]; rpm's brp scripts need bash's read -d).
    '--ro-bind',
    path.join(root, 'usr', 'bin', 'bash'),
    '/usr/bin/sh',
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
    ...(run.binds ?? []).flatMap((b) => ['--ro-bind', b.from, b.to]),
    '--dir',
    '/etc',
    ...files.flatMap(([at], i) => ['--perms', '0644', '--ro-bind-data', String(FD_ETC + i), at]),
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
    run.input ? '1' : '0',
    String(Math.floor(run.limits.memoryBytes / 1024)),
    String(run.limits.openFiles),
    String(run.limits.processes),
    run.prepare ?? '',
    ...run.command,
  ];
  return { args, data: files.map(([, text]) => text), mapsByAgent };
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
