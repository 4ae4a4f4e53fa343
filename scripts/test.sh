#!/usr/bin/env bash
# Runs every test: compile, then node's test runner over the unit tests (beside the code, src/**/*.test.ts)
# and the suites in test/ (storage conformance on SQLite and PostgreSQL, API, end to end with real tools).
set -euo pipefail
cd "$(dirname "$0")/.."
# Format and lint first (Biome: biome.json): a formatting slip or a lint error fails the run before anything else.
npx biome ci --colors=off .
npm run build --silent # tsc, then the one-file verifier (scripts/bundle-verifier.mjs)
# The emulated arches' roots, made once per machine and kept (about 14 minutes the first time): before the
# tests, so that making them does not count against the multi-arch test file's timeout.
node dist/test/support/prepare-roots.js
mapfile -t files < <(find dist/src dist/test -name '*.test.js' | sort)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
export LENIX_TEST_OUTPUT="${LENIX_TEST_OUTPUT:-$PWD/test-output}"
mkdir -p "$LENIX_TEST_OUTPUT"
exec node --test --test-timeout=900000 --test-concurrency="${LENIX_TEST_CONCURRENCY:-2}" --test-reporter=spec "${files[@]}"
