#!/usr/bin/env bash
# The whole suite on the embedded database (PGlite), then again on the PostgreSQL of
# DATABASE_URL when it is set. Tests under test/postgres/ need a real server (several
# processes on one database) and run only in the second pass; the dashboard's browser test
# (test/ui/) only in the first. Extra arguments go to mocha.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0; failed=0; status=0
run() {
  local label=$1; shift
  local log; log=$(mktemp)
  echo "== $label"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local p f
  p=$(grep -Eo '^ +[0-9]+ passing' "$log" | grep -Eo '[0-9]+' | tail -1)
  f=$(grep -Eo '^ +[0-9]+ failing' "$log" | grep -Eo '[0-9]+' | tail -1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  if [ "$rc" -ne 0 ]; then status=1; [ -z "$f" ] && failed=$((failed + 1)); fi
  rm -f "$log"
}

run "embedded database (PGlite)" env -u DATABASE_URL npx mocha 'test/**/*.test.ts' --ignore 'test/postgres/**' "$@"
if [ -n "${DATABASE_URL:-}" ]; then
  run "PostgreSQL ($DATABASE_URL)" npx mocha 'test/**/*.test.ts' --ignore 'test/ui/**' "$@"
fi
echo
echo "tests: $passed passed, $failed failed"
exit $status
