#!/usr/bin/env bash
# Installs what Lenix needs and is missing, then the npm dependencies and the compiled CLI. Idempotent: a
# second run installs nothing. Used by both quick-start commands (`npm start`, `npm test`) and by CI.
#   Debian 12: apt-get (rpm, createrepo-c, dnf, bubblewrap, rpmlint, gnupg, git, postgresql, gcc, make, the el9
#              platform's tools: elfutils, debugedit, cmake, meson, ninja, autotools, python3-setuptools,
#              with --test also openscap-scanner and chromium, which only the test suite uses)
#   EL9:       dnf (the same tools under their Fedora/EL names, PostgreSQL from AppStream)
#   --emulation (and --test): qemu-user-static, binfmt-support and debootstrap; binfmt_misc mounted and enabled
set -euo pipefail
cd "$(dirname "$0")/.."

need_cmds=(rpmbuild rpmspec createrepo_c modifyrepo_c dnf bwrap rpmlint gpg git gcc make prlimit tar)
# What EL specs build with on a build node (the el9 platform's macros call them): debuginfo extraction, CMake,
# Meson and Ninja, autotools, Python's setuptools.
need_cmds+=(eu-strip find-debuginfo cmake meson ninja autoreconf libtoolize)
/usr/bin/python3 -c 'import packaging, setuptools' 2>/dev/null || need_cmds+=(python3-packaging-and-setuptools)  # the system python rpm's generators use
platform_deb=(elfutils debugedit cmake meson ninja-build autoconf automake libtool python3-setuptools python3-packaging python3-dev pkgconf)
platform_el=(elfutils debugedit cmake meson ninja-build autoconf automake libtool python3-setuptools python3-packaging python3-devel pkgconf)
# `--test`: also what only the test suite uses (OpenSCAP for the OVAL checks, Chromium for the browser tests,
# Ceph's radosgw on a one-host cluster as the real S3 service behind the S3 blob store's tests, rsync for mirrors).
test_pkgs_deb=(); test_pkgs_el=()
# `--emulation` (implied by --test): qemu-user and debootstrap, for build nodes and testers of other architectures
# in system roots (`lenix node root create`, `lenix up --arches`).
emulation=0
case "${1:-}" in --test|--emulation) emulation=1 ;; esac
if [ "${1:-}" = "--test" ]; then
  need_cmds+=(oscap chromium radosgw ceph-mon ceph-osd monmaptool rsync)
  test_pkgs_deb=(openscap-scanner chromium radosgw ceph-mon ceph-osd ceph-common rsync)
  # EL9: Ceph comes from the CentOS Storage SIG (centos-release-ceph-reef, in extras).
  test_pkgs_el=(openscap-scanner chromium ceph-radosgw ceph-mon ceph-osd ceph-common rsync)
fi
if [ "$emulation" -eq 1 ]; then
  need_cmds+=(qemu-aarch64-static qemu-ppc64le-static qemu-s390x-static debootstrap file readelf)
  test_pkgs_deb+=(qemu-user-static binfmt-support debootstrap file binutils)
  test_pkgs_el+=(qemu-user-static file binutils)   # EPEL; system roots are made with debootstrap on Debian hosts
fi
missing=()
for c in "${need_cmds[@]}"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
pg_ok=0
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then pg_ok=1;            # Debian
elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then pg_ok=1; fi  # EL

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

if [ "${#missing[@]}" -gt 0 ] || [ "$pg_ok" -eq 0 ]; then
  echo "bootstrap: installing system packages (missing: ${missing[*]:-} $([ $pg_ok -eq 0 ] && echo postgresql))"
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -q
    "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends \
      rpm createrepo-c dnf bubblewrap rpmlint gnupg git postgresql gcc make util-linux tar ca-certificates \
      "${platform_deb[@]}" "${test_pkgs_deb[@]}"
  elif command -v dnf >/dev/null 2>&1; then
    if [ "${#test_pkgs_el[@]}" -gt 0 ]; then "${sudo_cmd[@]}" dnf install -y centos-release-ceph-reef || true; fi
    "${sudo_cmd[@]}" dnf install -y rpm-build rpm-sign createrepo_c dnf bubblewrap rpmlint gnupg2 git \
      postgresql-server gcc make util-linux tar "${platform_el[@]}" "${test_pkgs_el[@]}"   # chromium comes from EPEL on EL9
  else
    echo "bootstrap: neither apt-get nor dnf found; install: ${need_cmds[*]} postgresql" >&2
    exit 1
  fi
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
node_minor=$(node -p 'process.versions.node.split(".")[1]')
if [ "$node_major" -lt 20 ] || { [ "$node_major" -eq 20 ] && [ "$node_minor" -lt 19 ]; }; then
  echo "bootstrap: Node.js >= 20.19 is required (found $(node --version))" >&2
  exit 1
fi

# npm dependencies from the lockfile; `prepare` compiles the TypeScript. Skipped when already in place.
stamp=node_modules/.lenix-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -e node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then
  echo "bootstrap: npm ci"
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi
# rpm on Debian keeps its database in ~/.rpmdb; installroots (dnf --installroot) and OpenSCAP's rpminfo
# probe under OSCAP_PROBE_ROOT need the EL location, as a literal macro (no shell expansion in a chroot).
if command -v rpm >/dev/null 2>&1 && ! grep -qs '^%_dbpath /var/lib/rpm$' /etc/rpm/macros.lenix-dbpath 2>/dev/null && ! [ -f /etc/redhat-release ]; then
  "${sudo_cmd[@]}" mkdir -p /etc/rpm /var/lib/rpm
  echo '%_dbpath /var/lib/rpm' | "${sudo_cmd[@]}" tee /etc/rpm/macros.lenix-dbpath >/dev/null
fi

# Untrusted package code (spec parsing, builds, test roots) never runs as root: agents started as root drop to
# this system user, and test roots map their ids to its subordinate range (see docs/operations.md).
if [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null 2>&1; then
  if ! getent passwd lenix-build >/dev/null; then
    "${sudo_cmd[@]}" useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin lenix-build
    echo "bootstrap: created the sandbox user lenix-build"
  fi
  if ! grep -qs '^lenix-build:' /etc/subuid || ! grep -qs '^lenix-build:' /etc/subgid; then
    # The first 65536 ids past every range already given out (and past 100000).
    start=$(cat /etc/subuid /etc/subgid 2>/dev/null | awk -F: 'BEGIN { m = 100000 } NF == 3 { e = $2 + $3; if (e > m) m = e } END { print m }')
    "${sudo_cmd[@]}" usermod --add-subuids "$start-$((start + 65535))" --add-subgids "$start-$((start + 65535))" lenix-build
    echo "bootstrap: gave lenix-build the subordinate ids $start-$((start + 65535))"
  fi
fi

# Programs of other architectures run through qemu-user: binfmt_misc must be mounted and the handlers enabled (with
# the F flag binfmt-support registers qemu-user-static's, the sandbox needs no emulator inside a root).
if [ "$emulation" -eq 1 ] && { [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null 2>&1; }; then
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    echo "bootstrap: mounting binfmt_misc at /proc/sys/fs/binfmt_misc (foreign programs run through qemu-user)"
    "${sudo_cmd[@]}" mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
      echo "bootstrap: warning: cannot mount binfmt_misc here; builds of other architectures will not run" >&2
  fi
  for q in aarch64 ppc64le s390x; do
    if [ -e /proc/sys/fs/binfmt_misc/register ] && ! grep -qs '^enabled' "/proc/sys/fs/binfmt_misc/qemu-$q"; then
      echo "bootstrap: enabling the binfmt_misc handler qemu-$q"
      "${sudo_cmd[@]}" update-binfmts --enable "qemu-$q" ||
        echo "bootstrap: warning: cannot enable qemu-$q; $q builds will not run" >&2
    fi
  done
fi

if [ ! -f dist/src/cli/main.js ] || [ ! -f dist/lenix-verify.cjs ]; then npm run build --silent; fi
echo "bootstrap: ready"
