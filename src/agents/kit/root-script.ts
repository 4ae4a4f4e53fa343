/**
 * The bash that makes a throwaway root inside a 'root' sandbox (its own user namespace: the capabilities reach
 * nothing outside). Test roots and buildroots share it. Expects ROOT and W; leaves $ROOT with the host's /usr
 * under a writable overlay, the sandbox's own /etc (already filtered: no host secret), /dev and /proc, and an
 * empty rpm database; exits through `root_failed REASON` (defined by the caller) when a step fails.
 */
/**
 * The rest of a root once its /usr is mounted: the /bin, /lib ... links, the sandbox's /etc (files a cached root
 * brings are kept), rpm's %_libdir for the dynamic linker, /dev and /proc.
 */
const ROOT_REST = String.raw`links=(); for d in bin lib lib64 sbin; do [ -e "${'$'}{SYSTEM:-}/$d" ] && links+=("usr/$d"); done
# One process for all the links (each is named after its target's last part) and one for all the folders: a
# process start is ~10 ms on a small VM, and a root is made for every test and every uncached build.
[ ${'$'}{#links[@]} -eq 0 ] || ln -sfn -t "$ROOT" "${'$'}{links[@]}"
mkdir -p "$ROOT/etc/ld.so.conf.d" "$ROOT/var/lib/rpm" "$ROOT/var/tmp" "$ROOT/tmp" "$ROOT/dev" "$ROOT/proc" "$ROOT/run"
chmod 1777 "$ROOT/tmp" "$ROOT/var/tmp"
# A system root of another architecture brings its own dynamic linker cache and alternatives links.
if [ -n "${'$'}{SYSTEM:-}" ]; then
  for f in ld.so.cache ld.so.conf ld.so.conf.d alternatives; do [ -e "$SYSTEM/etc/$f" ] && cp -a "$SYSTEM/etc/$f" "$ROOT/etc/"; done
fi
cp -an /etc/. "$ROOT/etc/" 2>/dev/null; : > "$ROOT/etc/hosts"
# Packages install their libraries into rpm's %_libdir (/usr/lib64 on EL, also with Debian's rpm): the dynamic
# linker of the root looks there too, so ldconfig scriptlets and programs find them as on EL.
# RPM_LIBDIR is that value, read by the agent when it started.
echo "${'$'}{RPM_LIBDIR:-$(rpm --eval '%_libdir')}" > "$ROOT/etc/ld.so.conf.d/lenix-libdir.conf"
mount --rbind /dev "$ROOT/dev" && mount -t proc proc "$ROOT/proc" || root_failed "cannot mount /dev and /proc in the root"
`;

/**
 * The bash that makes a throwaway root inside a 'root' sandbox (its own user namespace: the capabilities reach
 * nothing outside). Test roots and buildroots share it. Expects ROOT and W; leaves $ROOT with the host's /usr
 * under a writable overlay (new files go to $W/ovl/upper), the sandbox's own /etc (already filtered: no host
 * secret), /dev and /proc, and an empty rpm database; exits through `root_failed REASON` (defined by the
 * caller) when a step fails.
 */
export const MAKE_ROOT = String.raw`# The host's /usr belongs to host users this namespace does not map, so its folders would refuse new entries
# even to this root. A skeleton of the same folders, owned here, lies over it: merged folders take their owner
# from the topmost layer, so packages can add files anywhere in /usr, while the host's files stay read-only.
# SYSTEM, when set, is a system root of another architecture bound in the sandbox: its /usr is the lower layer.
# USR_FOLDERS is the list of that /usr's folders the agent made when it started (kit/usr-folders.ts), instead of
# walking /usr in every root.
U="${'$'}{SYSTEM:-}/usr"
mkdir -p "$ROOT/usr" "$W/ovl/upper" "$W/ovl/work" "$W/ovl/skel"
# One mkdir for the whole list (~0.9 MB on a Debian host): xargs's default of 128 KiB a command started eight.
(cd "$W/ovl/skel" && xargs -0 -r -s 2000000 mkdir < "$USR_FOLDERS") || root_failed "cannot make the skeleton of /usr"
if ! mount -t overlay overlay -o "lowerdir=$W/ovl/skel:$U,upperdir=$W/ovl/upper,workdir=$W/ovl/work" "$ROOT/usr"; then
  root_failed "cannot mount an overlay of /usr"
fi
# /bin/sh is bash in roots, as on EL (scriptlets and build sections written for it).
ln -sfn bash "$ROOT/usr/bin/sh"
${ROOT_REST}`;

/**
 * A root whose packages are all installed already (a cached buildroot: $W/ovl/upper and $ROOT restored): its /usr
 * is the installed files over the host's, read-only — nothing installs any more, so no skeleton is needed.
 */
export const MAKE_INSTALLED_ROOT = String.raw`mkdir -p "$ROOT/usr"
if ! mount -t overlay overlay -o "ro,lowerdir=$W/ovl/upper:/usr" "$ROOT/usr"; then
  root_failed "cannot mount the cached root's /usr"
fi
${ROOT_REST}`;

/** dnf's own configuration for roots, not the host's (which may hold proxy passwords or repository credentials). */
export const ROOT_DNF_CONF =
  '[main]\ngpgcheck=1\ninstallonly_limit=3\nclean_requirements_on_remove=True\nbest=True\nskip_if_unavailable=False\n';

/**
 * Bash for a step's time in a task's log, in the line the agents' own step timer prints (kit/step-timer.ts):
 * `say_took STEP START` says how long STEP has taken since START, a time from bash's own clock in microseconds
 * (`${EPOCHREALTIME/[.,]/}`: no process started to read it).
 */
export const SAY_TOOK = String.raw`say_took() {
  local d=$(( ${'$'}{EPOCHREALTIME/[.,]/} - $2 ))
  printf 'lenix: %s took %d.%02d s\n' "$1" $(( d / 1000000 )) $(( d / 10000 % 100 ))
}
`;
