import { PLATFORM_MACROS } from '../../core/protocol.js';
import { MAKE_INSTALLED_ROOT, MAKE_ROOT, SAY_TOOK } from '../kit/root-script.js';

/** Files the buildroot script leaves in the output folder besides the built packages. */
export const INSTALLED_LIST = 'buildroot-packages.txt';
export const ROOT_CACHE = 'root-cache.tar';
/** The exit status that means "BuildRequires missing"; the missing capabilities are `@@LENIX-MISSING` lines. */
export const MISSING_STATUS = 20;
/** The exit status that means the root could not be made (the reason is the `lenix:` line before it). */
export const ROOT_FAILED_STATUS = 21;
/** Rounds of %generate_buildrequires before the build gives up (rpm's own tools use a handful). */
export const DYNAMIC_ROUNDS = 5;

/**
 * The script of a binary build in a buildroot. It runs in a 'root' sandbox (root of its own user namespace,
 * no network) and:
 *   1. indexes the repositories the node placed in in/repos/ (the target's snapshots, packages verified by digest);
 *   2. makes the root (MAKE_ROOT), restoring a cached one from in/root-cache.tar when the node has it;
 *   3. installs lenix-host-base and the SRPM's BuildRequires with dnf, gpgcheck=1 against the repositories'
 *      keys; a capability nothing provides ends the run with MISSING_STATUS and one `@@LENIX-MISSING` line each;
 *   4. saves the root for the node's cache (SAVE_CACHE), before any code of the package being built has run;
 *   5. runs %generate_buildrequires (`rpmbuild -rr`) as the build user and installs what it asks for, until
 *      it asks for nothing more (DYNAMIC set);
 *   6. writes the list of installed packages, then runs `rpmbuild --rebuild` (BuildRequires checked by rpm
 *      against the root's database: no --nodeps) chrooted into the root as the unprivileged build user, with
 *      no capability and no_new_privs, and copies the packages out.
 * Inputs: W, SRPM (file name in in/), BUILD_UID, DYNAMIC, SAVE_CACHE, USR_FOLDERS; in/buildrequires (one per line);
 * in/rpmbuild.args (NUL-separated arguments of rpmbuild); in/build.env (NUL-separated VAR=value of the build).
 */
export function buildrootScript(): string {
  return String.raw`#!/bin/bash
set -uo pipefail
ROOT="$W/root"
OUT="$W/out"
mkdir -p "$OUT" "$W/home"
echo '%_dbpath /var/lib/rpm' > "$W/home/.rpmmacros"
export HOME="$W/home"
root_failed() { echo "lenix: $1"; exit ${ROOT_FAILED_STATUS}; }
# Each step's time in the log.
${SAY_TOOK}step_start=${'$'}{EPOCHREALTIME/[.,]/}
took() { say_took "$1" "$step_start"; step_start=${'$'}{EPOCHREALTIME/[.,]/}; }
DNF=(dnf -y --config="$W/in/dnf.conf" --installroot="$ROOT" --releasever=9 --setopt=reposdir="$W/in/repos.d" --setopt=cachedir="$W/cache"
     --setopt=install_weak_deps=0 --setopt=keepcache=0 --disableplugin='*')
install_deps() {
  local out rc
  out=$("${'$'}{DNF[@]}" install "$@" 2>&1); rc=$?
  echo "$out"
  if [ $rc -ne 0 ]; then
    missing=$(echo "$out" | sed -nE 's/^No match for argument: (.+)$/@@LENIX-MISSING \1/p; s/^.*nothing provides (.+) needed by .*$/@@LENIX-MISSING \1/p' | sort -u)
    # Anything else (a signature that does not verify, a broken repository) is not a missing BuildRequires.
    [ -n "$missing" ] || root_failed "dnf could not install the build dependencies: $(echo "$out" | grep -v '^\s*$' | tail -1)"
    echo "$missing"
    echo "lenix: dnf could not install the build dependencies (exit $rc)"
    exit ${MISSING_STATUS}
  fi
}

for r in "$W"/in/repos/*/; do
  [ -d "$r" ] || continue
  createrepo_c --quiet --no-database "$r" || root_failed "createrepo_c refused the packages of $(basename "$r")"
done
cached=""
if [ -f "$W/in/${ROOT_CACHE}" ]; then
  tar -x --numeric-owner -C "$W" -f "$W/in/${ROOT_CACHE}" || root_failed "the cached root does not unpack"
  cached=1
fi
mapfile -t BUILDREQUIRES < "$W/in/buildrequires"
if [ -n "$cached" ] && [ -z "$DYNAMIC" ]; then
  # Nothing installs into a cached root: its packages over the host's /usr, read-only.
  ${MAKE_INSTALLED_ROOT}
else
  rm -rf "$W/ovl/skel" && ${MAKE_ROOT}
fi
if [ -n "$cached" ]; then
  echo "lenix: buildroot from the node's cache (same repository contents and BuildRequires)"
else
  echo "lenix: installing lenix-host-base ${'$'}{BUILDREQUIRES[*]}"
  install_deps lenix-host-base "${'$'}{BUILDREQUIRES[@]}"
  if [ -n "$SAVE_CACHE" ]; then
    tar -C "$W" --numeric-owner --one-file-system -cf "$OUT/${ROOT_CACHE}" ovl/upper root || root_failed "cannot save the root"
  fi
fi

# The build user, and its folder inside the root at the same path as plain builds use.
grep -q '^builder:' "$ROOT/etc/passwd" || echo "builder:x:$BUILD_UID:$BUILD_UID:Lenix build user:$W:/bin/bash" >> "$ROOT/etc/passwd"
grep -q '^builder:' "$ROOT/etc/group" || echo "builder:x:$BUILD_UID:" >> "$ROOT/etc/group"
B="$ROOT$W"
mkdir -p "$B/in" "$B/out" "$B/reqs"
cp "$W/in/$SRPM" "$B/in/"
# A platform's macros, when the package being built is that platform's own (it cannot be installed before).
[ -f "$W/in/${PLATFORM_MACROS}" ] && cp "$W/in/${PLATFORM_MACROS}" "$B/in/"
echo '%_dbpath /var/lib/rpm' > "$B/.rpmmacros"
chown -R "$BUILD_UID:$BUILD_UID" "$B"
mapfile -d '' -t ARGS < "$W/in/rpmbuild.args"
mapfile -d '' -t BUILD_ENV < "$W/in/build.env"
as_builder() {
  chroot "$ROOT" setpriv --reuid="$BUILD_UID" --regid="$BUILD_UID" --clear-groups --inh-caps=-all --no-new-privs -- \
    env -i "${'$'}{BUILD_ENV[@]}" bash -c 'cd "$HOME" && exec "$@"' lenix-build "$@"
}

if [ -n "$DYNAMIC" ]; then
  for round in $(seq 1 ${DYNAMIC_ROUNDS}); do
    rm -f "$B"/reqs/*
    as_builder rpmbuild -rr "${'$'}{ARGS[@]}" --define "_srcrpmdir $W/reqs" "$W/in/$SRPM"; rc=$?
    [ $rc -eq 0 ] && break
    [ $rc -eq 11 ] || { echo "lenix: %generate_buildrequires failed (exit $rc)"; exit $rc; }
    reqs=$(rpm -qp --requires "$B"/reqs/*.buildreqs.nosrc.rpm 2>/dev/null | grep -v '^rpmlib(' | sort -u)
    echo "lenix: %generate_buildrequires, round $round: $(echo "$reqs" | paste -sd ' ' -)"
    mapfile -t more <<< "$reqs"
    install_deps "${'$'}{more[@]}"
    [ "$round" = ${DYNAMIC_ROUNDS} ] && { echo "lenix: %generate_buildrequires still asks for more after ${DYNAMIC_ROUNDS} rounds"; exit 11; }
  done
fi

# What the root holds (a cached root's list is the node's manifest, made from this same list when it was saved).
if [ -z "$cached" ] || [ -n "$DYNAMIC" ]; then
  rpm --root "$ROOT" -qa --qf '%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n' > "$OUT/${INSTALLED_LIST}" || root_failed "cannot list the root's packages"
fi
took buildroot
as_builder rpmbuild --rebuild "${'$'}{ARGS[@]}" "$W/in/$SRPM" || exit $?
took 'rpmbuild in the buildroot'
# rpmbuild writes into per-arch folders: the packages go out flat (regular files only, never links).
find "$B/out" -type f -name '*.rpm' ! -name '*.src.rpm' ! -name '*.nosrc.rpm' -exec cp -- {} "$OUT/" \;
`;
}
