import { MAKE_ROOT, SAY_TOOK } from '../kit/root-script.js';
import { TEST_STAGE_LIMITS, type TestStage } from '../../core/protocol.js';

/**
 * Bash: `lint_result FILE STATUS` prints rpmlint's output (FILE) and reports the rpmlint stage through `result`
 * (defined by the caller): failed if the run never reached its summary (killed, crashed: never a pass with no
 * errors counted) or if any line is an error. Lines are read and counted in bash, so no cat or grep is started.
 */
export const LINT_RESULT = String.raw`lint_result() {
  local line errors=0 warnings=0 summary=0
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s\n' "$line"
    [[ $line == *': E: '* ]] && errors=$((errors + 1))
    [[ $line == *': W: '* ]] && warnings=$((warnings + 1))
    [[ $line =~ [0-9]+\ packages\ and\ [0-9]+\ specfiles\ checked ]] && summary=1
  done < "$1"
  if [ "$summary" = 0 ]; then result rpmlint failed "rpmlint did not finish (exit $2)"
  elif [ "$errors" -gt 0 ]; then result rpmlint failed "$errors errors, $warnings warnings"
  else result rpmlint passed "0 errors, $warnings warnings"; fi
}
`;

/**
 * The script that runs inside the tester's sandbox (bash, as root of the sandbox's own user namespace: its
 * capabilities reach nothing outside, and its ids map to an unprivileged host user). The tester's files are in
 * $W/in (signed packages, keys, the host-base repository, the source archive, repository files). Inputs come
 * from the environment: W (work folder), PACKAGES (NEVRAs under test), TESTS (files in tests/), EXTRA_REPOS
 * (how many repositories of dependencies are in in/target-N), RPMLINT_CONFIG, REPOS_D (the folder of .repo files
 * under in/), LINT (1: run rpmlint on every package too), USR_FOLDERS (the list of /usr's folders for the root's
 * skeleton), and for a root of another architecture SYSTEM (where its /usr and /etc are bound) and FORCEARCH; in
 * a sandbox started before its task, the task's ones come from the file in/$TASK_ENV instead, and the root is
 * already made (testRootPrepare). Each stage prints `@@LENIX-STAGE name` and ends with one
 * `@@LENIX-RESULT name passed|failed|skipped detail` line, which parseStages() reads back.
 */
export function testRootScript(): string {
  return String.raw`#!/bin/bash
set -uo pipefail
ROOT="$W/root"
# A root made before the task came (testRootPrepare) gets the task's variables from a file: NUL-separated
# NAME=value pairs the tester wrote, exported as they are (never evaluated).
if [ -n "${'$'}{TASK_ENV:-}" ]; then
  while IFS= read -r -d '' kv; do export "$kv"; done < "$W/in/$TASK_ENV"
fi
# Each stage's time in the log.
${SAY_TOOK}stage() { echo "@@LENIX-STAGE $1"; stage_start=${'$'}{EPOCHREALTIME/[.,]/}; }
result() { echo "@@LENIX-RESULT $1 $2 $3"; say_took "$1" "$stage_start"; }
${LINT_RESULT}DNF=(dnf -y --config="$W/in/dnf.conf" --installroot="$ROOT" --releasever=9 --setopt=reposdir="$W/in/$REPOS_D" --setopt=cachedir="$W/cache"
     ${'$'}{FORCEARCH:+--forcearch=$FORCEARCH}
     --setopt=install_weak_deps=0 --setopt=keepcache=0 --disableplugin='*')

# warm_run NAME COMMAND ARGS...: COMMAND through the tool the sandbox's prepare step started and imported ahead
# (testRootPrepare: dnf and rpmlint, whose Python imports are ~0.2 s each), or COMMAND itself where there is none.
warm_run() {
  local n="$W/warm-$1" pid="" rc=""; shift
  # Files are read with bash's read, not cat: each process start costs ~10 ms on a small VM.
  [ -f "$n.pid" ] && read -r pid < "$n.pid"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then "$@"; return; fi
  { printf '%s\0' "$PWD" "${'$'}{@:2}"; printf '\n'; } > "$n.req"
  cat "$n.out"
  read -r rc 2>/dev/null < "$n.rc"
  [ -n "$rc" ] || { echo "lenix: $1 ended without an exit status"; rc=1; }
  return "$rc"
}

# rpmlint reads only the package files, so it runs beside the root, install, tests and remove stages (its
# Python start-up is the slowest single step); its stage reports when it has finished.
# rpmlint checks signatures against an rpm database: give it one that knows the signing key.
# A sandbox prepared ahead has made its folders (testRootPrepare).
[ -d "$W/lint-home" ] || mkdir -p "$W/lint-home" "$W/tree" "$W/home"
echo "%_dbpath $W/lintdb" > "$W/lint-home/.rpmmacros"
rpmkeys --dbpath "$W/lintdb" --import "$W/in/key.asc"
if [ "$LINT" = 1 ]; then
  lint_start=${'$'}{EPOCHREALTIME/[.,]/}
  HOME="$W/lint-home" warm_run rpmlint rpmlint -c "$RPMLINT_CONFIG" "$W"/in/repo/*.rpm > "$W/rpmlint.out" 2>&1 &
  lint_pid=$!
fi

stage root
root_failed() { result root failed "$1"; exit 0; }
repos=("$W/in/repo"); for ((i = 0; i < EXTRA_REPOS; i++)); do repos+=("$W/in/target-$i"); done
for r in "${'$'}{repos[@]}"; do
  if ! createrepo_c --quiet --no-database "$r"; then result root failed "createrepo_c refused the packages"; exit 0; fi
done
tar -x --no-same-owner -f "$W/in/source.tar" -C "$W/tree" 2>/dev/null
echo '%_dbpath /var/lib/rpm' > "$W/home/.rpmmacros"
ahead=""
if [ -f "$W/.prepared" ]; then ahead=" (made before the task came)"; else
${MAKE_ROOT}fi
lower="the host /usr"; [ -n "${'$'}{SYSTEM:-}" ] && lower="the /usr of the $FORCEARCH system root"
result root passed "overlay of $lower plus lenix-host-base$ahead"

stage install
# The signing key into the root's rpm database first: dnf then finds every signature's key there (gpgcheck=1
# still checks each package) and never imports it through gpgme, which starts gpg, gpgconf and a gpg-agent.
rpmkeys --root "$ROOT" --dbpath /var/lib/rpm --import "$W/in/key.asc" || echo "lenix: the signing key could not be put in the root's rpm database; dnf imports it"
out=$(warm_run dnf "${'$'}{DNF[@]}" install lenix-host-base $PACKAGES 2>&1); rc=$?
echo "$out"
if [ $rc -ne 0 ]; then
  missing=$(echo "$out" | grep -oE 'nothing provides .+ needed by [^ ]+' | sed 's/ from .*//' | sort -u | paste -sd ';' -)
  result install failed "${'$'}{missing:-dnf install exited $rc}"
  exit 0
fi
result install passed "installed with gpgcheck=1: $PACKAGES"

stage verify
out=$(rpm --root "$ROOT" -V $PACKAGES 2>&1); rc=$?
echo "$out"
if [ $rc -ne 0 ]; then result verify failed "rpm -V: $(echo "$out" | head -3 | paste -sd ';' -)"; else result verify passed "rpm -V clean"; fi

stage tests
if [ -z "$TESTS" ]; then
  result tests skipped "no tests/ folder"
else
  mkdir -p "$ROOT/tmp/lenix-tests" && cp -a "$W/tree/tests/." "$ROOT/tmp/lenix-tests/"
  failed=""; ran=0
  for t in $TESTS; do
    [ -x "$W/tree/tests/$t" ] || { echo "lenix: skipping $t (not executable)"; continue; }
    ran=$((ran+1))
    echo "lenix: running tests/$t"
    out=$(cd / && chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME=/tmp "/tmp/lenix-tests/$t" 2>&1); rc=$?
    echo "$out"
    if [ $rc -ne 0 ]; then failed="$failed $t(exit $rc)";
    elif echo "$out" | grep -qE '^not ok\b'; then failed="$failed $t($(echo "$out" | grep -cE '^not ok\b') TAP failures)"; fi
  done
  if [ -n "$failed" ]; then result tests failed "failed:$failed"; else result tests passed "$ran test(s) passed"; fi
fi

# rpm itself removes: the same erase scriptlets and triggers that dnf's transaction runs, without dnf's start-up
# and repository loading (~0.3 s); what dnf installed for the packages stays, the root is thrown away anyway.
stage remove
out=$(rpm --root "$ROOT" -e $PACKAGES 2>&1); rc=$?
echo "$out"
if [ $rc -ne 0 ]; then
  why=$(echo "$out" | grep -E '^error: ' | head -3 | paste -sd ';' -)
  result remove failed "rpm -e: ${'$'}{why:-exited $rc}"
else result remove passed "removed cleanly"; fi

[ "$LINT" = 1 ] || exit 0
stage rpmlint
wait "$lint_pid"; rc=$?
stage_start=$lint_start # its time is from its start beside the other stages
lint_result "$W/rpmlint.out" "$rc"
`;
}

/**
 * One run of dnf or rpmlint, imported before it is asked for (argv: the tool, the path its files start with).
 * It holds its request and output fifos open for reading and writing, so that the test script's opens never
 * wait on it and its read of the output ends when this process and what it started have closed it; it reads
 * one request (the caller's folder and the arguments, NUL-separated, then a newline), runs the tool with its
 * output in the fifo, and leaves the exit status in a file. If the import failed, it runs the tool's own
 * program instead.
 */
const WARM_TOOL = String.raw`import os, sys
tool, base = sys.argv[1], sys.argv[2]
req = os.open(base + '.req', os.O_RDWR)
out = os.open(base + '.out', os.O_RDWR)
try:
    if tool == 'dnf':
        from dnf.cli import main as dnf_main
        def run(args):
            return dnf_main.user_main(args, exit_code=False)
    else:
        import importlib, pkgutil, rpmlint.checks, rpmlint.cli
        for m in pkgutil.iter_modules(rpmlint.checks.__path__):
            importlib.import_module('rpmlint.checks.' + m.name)
        def run(args):
            sys.argv = ['rpmlint', *args]
            return rpmlint.cli.lint()
except BaseException:
    run = None
data = b''
while not data.endswith(b'\0\n'):
    data += os.read(req, 65536)
cwd, *args = [f.decode() for f in data[:-2].split(b'\0')]
os.chdir(cwd)
os.dup2(out, 1)
os.dup2(out, 2)
os.close(out)
os.close(req)
try:
    if run is None:
        import subprocess
        rc = subprocess.call([tool, *args])
    else:
        rc = run(args)
except SystemExit as e:
    if e.code is not None and not isinstance(e.code, int):
        print(e.code, file=sys.stderr)
    rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
except BaseException:
    import traceback
    traceback.print_exc()
    rc = 1
sys.stdout.flush()
sys.stderr.flush()
with open(base + '.rc.new', 'w') as f:
    f.write(str(rc if isinstance(rc, int) else 1))
os.rename(base + '.rc.new', base + '.rc')
os._exit(0)
`;

/**
 * The root of testRootScript, made in a sandbox started before its task (the wrapper's `prepare` step: no
 * package code has run, no input is there yet), and dnf and rpmlint started and imported, waiting for the test
 * script's warm_run (rpm reads its macros when it is imported: each gets the .rpmmacros the script would give
 * it). Expects W, USR_FOLDERS and RPM_LIBDIR in the environment; the test script then skips making the root.
 */
export function testRootPrepare(): string {
  return String.raw`set -uo pipefail
ROOT="$W/root"
root_failed() { echo "lenix: $1"; exit 1; }
${MAKE_ROOT}: > "$W/.prepared"
mkdir -p "$W/home" "$W/lint-home" "$W/tree"
echo '%_dbpath /var/lib/rpm' > "$W/home/.rpmmacros"
echo "%_dbpath $W/lintdb" > "$W/lint-home/.rpmmacros"
IFS= read -r -d '' warm_code <<'LENIX_WARM_TOOL'
${WARM_TOOL}LENIX_WARM_TOOL
# The interpreter dnf and rpmlint name, isolated (-I: no folder, user site or PYTHON* variable on its path).
warm() {
  HOME="$2" /usr/bin/python3 -I -c "$warm_code" "$1" "$W/warm-$1" </dev/null >/dev/null 2>&1 &
  echo $! > "$W/warm-$1.pid"
}
# Without their fifos the test script runs each tool itself (warm_run finds no pid).
if mkfifo "$W/warm-dnf.req" "$W/warm-dnf.out" "$W/warm-rpmlint.req" "$W/warm-rpmlint.out"; then
  warm dnf "$W/home"
  warm rpmlint "$W/lint-home"
fi
`;
}

export type StageResult = TestStage;

/** The stage lines of a test run's output, cut to what the server accepts (package output can print them too). */
export function parseStages(output: string): StageResult[] {
  const out: StageResult[] = [];
  for (const line of output.split('\n')) {
    const m = /^@@LENIX-RESULT (\S+) (passed|failed|skipped) ?(.*)$/.exec(line);
    if (!m) continue;
    if (out.length === TEST_STAGE_LIMITS.stages) break;
    out.push({
      name: m[1]!.slice(0, TEST_STAGE_LIMITS.name),
      outcome: m[2] as StageResult['outcome'],
      detail: (m[3] ?? '').slice(0, TEST_STAGE_LIMITS.detail),
    });
  }
  return out;
}
