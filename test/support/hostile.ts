import path from 'node:path';

/** What the hostile-package suite (test/e2e-hostile.test.ts) plants, tries and looks for. */

export type Task = { id: number; kind: string; state: string; reasonCode: string | null; reason: string | null };
export type Build = { id: number; state: string; evr: string; reasonCode: string | null; tasks: Task[] };

/** Host paths a hostile package tries to write; none may exist afterwards. */
export const MARKER_DIRS = ['/var/lib', '/etc', '/tmp', '/root'];
/** The host's secrets that the test plants or that exist anyway; a sandbox must never find one of them. */
const SECRETS = ['admin.token', 'node.token', 'private-keys-v1.d', 'lenix-hostile-secret.sqlite', 'lenix.db'];
export const secretsFound = (log: string) =>
  [...log.matchAll(/HOSTILE \w+ FOUND (\S+)/g)].map((m) => m[1]!).filter((f) => SECRETS.includes(path.basename(f)));

/**
 * What a hostile package tries, as bash: take the host, read its secrets, reach out, and say what worked.
 * `ESCAPE ...` lines name a real escape (never allowed); `LIMIT ...` lines a limit of the sandbox undone (never
 * allowed); `PRIV ...` lines name privileges inside the sandbox's own
 * namespaces (never allowed in a build, expected for the test root's namespaced root); `FOUND ...` lines name
 * files that look like secrets (the sandbox's own rpm databases are *.sqlite too: the test checks that none is
 * one of the host's); every attempt also leaves markers that the test looks for on the host.
 */
export function attack(
  where: string,
  host: { pid: number; port: number; abstract: string },
  opts: { unmount: boolean },
): string {
  return String.raw`say() { echo "HOSTILE ${where} $*"; }
say "$(grep CapEff /proc/self/status | tr -s '\t' ' ')"
say "uid_map: $(tr -s ' ' < /proc/self/uid_map | tr '\n' ';')"
mount -o remount,rw / 2>/dev/null && say "PRIV remounted / read-write"
mount -t tmpfs lenix /mnt 2>/dev/null && say "PRIV mounted a tmpfs"
# The sandbox's limits and its ban on user namespaces hold for everything package code runs, whoever started it.
(ulimit -H -u unlimited) 2>/dev/null && say "LIMIT raised its hard process limit"
(ulimit -H -v unlimited) 2>/dev/null && say "LIMIT raised its hard memory limit"
unshare -U true 2>/dev/null && say "LIMIT made a user namespace"
echo 1000 2>/dev/null > /proc/sys/user/max_user_namespaces && say "LIMIT allowed user namespaces again"
for d in ${MARKER_DIRS.join(' ')}; do
  mkdir -p "$d" 2>/dev/null; echo pwned 2>/dev/null > "$d/lenix-hostile-${where}" && say "wrote $d/lenix-hostile-${where} (in its own view)"
done
# Every candidate is named; the test checks that none of them is one of the host's secrets.
find / -path /proc -prune -o \( -name admin.token -o -name node.token -o -name private-keys-v1.d -o -name '*.sqlite' -o -name lenix.db \) -print 2>/dev/null | head -20 | while read -r f; do say "FOUND $f"; done
head -c 64 /etc/shadow 2>/dev/null | grep -q . && say "ESCAPE read /etc/shadow: $(head -1 /etc/shadow)"
kill -0 ${host.pid} 2>/dev/null && say "ESCAPE can signal host process ${host.pid}"
[ -e /proc/${host.pid}/root/etc ] && say "ESCAPE sees /proc/${host.pid}/root"
python3 -c 'import ctypes, sys; sys.exit(0 if ctypes.CDLL(None).ptrace(16, ${host.pid}, 0, 0) == 0 else 1)' 2>/dev/null && say "ESCAPE ptrace attached to ${host.pid}"
(exec 3<>/dev/tcp/127.0.0.1/${host.port}) 2>/dev/null && say "ESCAPE connected to 127.0.0.1:${host.port}"
python3 -c 'import socket; socket.socket(socket.AF_UNIX).connect("\0${host.abstract}")' 2>/dev/null && say "ESCAPE connected to the abstract socket"
${
  opts.unmount
    ? String.raw`# Unmount everything it can see, then look again (bash builtins only: /usr may be gone now).
unmounted=0
for m in $(awk '{print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m" 2>/dev/null && { unmounted=1; say "PRIV unmounted $m"; }; done
if [ $unmounted = 1 ]; then
  shopt -s globstar dotglob nullglob
  for f in /**; do case "${'$'}{f##*/}" in admin.token|node.token|private-keys-v1.d|*.sqlite|lenix.db) say "FOUND $f";; esac; done
fi`
    : ''
}
say DONE
true
`;
}

/**
 * Listeners a hostile package must never reach — TCP on the host's loopback and an abstract unix socket — and the
 * host facts `attack` takes; every connection is recorded in `hits`.
 */
export async function hostListener(tag: string): Promise<{
  host: { pid: number; port: number; abstract: string };
  hits: string[];
  close: () => void;
}> {
  const { createServer } = await import('node:net');
  const hits: string[] = [];
  const listener = (what: string) =>
    createServer((c) => {
      hits.push(what);
      c.destroy();
    });
  const tcp = listener('tcp');
  const unix = listener('abstract');
  const abstract = `lenix-${tag}-${process.pid}`;
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => unix.listen(`\0${abstract}`, r));
  const address = tcp.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    host: { pid: process.pid, port, abstract },
    hits,
    close: () => {
      tcp.close();
      unix.close();
    },
  };
}
