import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A real dnf client in a fresh --installroot on this Debian host: the root is an overlay of the host's /usr
 * (so scriptlets find /bin/sh and programs their libraries), with the tester's host-base package installed
 * by rpm as the "base system" an EL client would already have. dnf then sees only the repositories in
 * `reposDir` (the Lenix .repo file as published). Needs root (mount namespace + overlayfs).
 */
export class DnfClient {
  readonly root: string;
  /** The system whose /usr and /etc the root starts from ('/' or a foreign system root); `forcearch` for dnf. */
  private readonly system: string;
  private readonly forcearch: string | undefined;
  constructor(
    readonly dir: string,
    readonly reposDir: string,
    o: { systemRoot?: string; forcearch?: string } = {},
  ) {
    this.root = path.join(dir, 'root');
    this.system = o.systemRoot ?? '/';
    this.forcearch = o.forcearch;
  }

  private script(body: string): string {
    return String.raw`set -uo pipefail
D="${this.dir}"; ROOT="$D/root"
mkdir -p "$ROOT/usr" "$D/upper" "$D/work" "$D/home"
B="${this.system}"
mount -t overlay overlay -o "lowerdir=$B/usr,upperdir=$D/upper,workdir=$D/work" "$ROOT/usr" || exit 90
for d in bin lib lib64 sbin; do [ -e "$B/$d" ] && ln -sfn "usr/$d" "$ROOT/$d"; done
mkdir -p "$ROOT/etc" "$ROOT/var/lib/rpm" "$ROOT/tmp" "$ROOT/var/tmp" "$ROOT/dev"
[ -e "$ROOT/etc/passwd" ] || cp /etc/passwd /etc/group "$ROOT/etc/"
# A foreign system root brings its own dynamic linker cache and alternatives links.
if [ "$B" != / ] && [ ! -e "$ROOT/etc/ld.so.cache" ]; then cp -a "$B/etc/ld.so.cache" "$B/etc/alternatives" "$ROOT/etc/"; fi
mount --rbind /dev "$ROOT/dev"
echo '%_dbpath /var/lib/rpm' > "$D/home/.rpmmacros"
export HOME="$D/home"
DNF=(dnf -y ${this.forcearch ? `--forcearch=${this.forcearch} ` : ''}--installroot="$ROOT" --releasever=9 --setopt=reposdir="${this.reposDir}" --setopt=cachedir="$D/cache" --setopt=install_weak_deps=0 --disableplugin='*')
${body}
`;
  }

  async sh(body: string): Promise<{ code: number; out: string }> {
    await mkdir(this.dir, { recursive: true });
    const file = path.join(this.dir, `step-${Date.now()}-${Math.random().toString(36).slice(2)}.sh`);
    await writeFile(file, this.script(body));
    try {
      const { stdout, stderr } = await run('unshare', ['-m', '--propagation', 'private', 'bash', file], {
        maxBuffer: 64 * 1024 * 1024,
      });
      return { code: 0, out: stdout + stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : 1, out: (e.stdout ?? '') + (e.stderr ?? '') };
    }
  }

  /** Install the base-system stand-in (host-base) with rpm, once. */
  async base(hostBaseRpm: string): Promise<void> {
    const r = await this.sh(
      `rpm --root "$ROOT" -q lenix-host-base >/dev/null 2>&1 || rpm --root "$ROOT" -i --nodigest --nosignature "${hostBaseRpm}"`,
    );
    if (r.code !== 0) throw new Error(`host-base install failed: ${r.out}`);
  }

  dnf(args: string): Promise<{ code: number; out: string }> {
    return this.sh(`"${'$'}{DNF[@]}" ${args}`);
  }
}
