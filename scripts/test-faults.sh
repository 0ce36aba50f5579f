#!/usr/bin/env bash
# The API fuzz test, then the fault scenarios and the soak (test/faults/*.faults.ts, which
# `npm test` does not run),
# against the PostgreSQL of DATABASE_URL: each scenario creates a fresh database there and
# drops it afterwards (RELAY_FAULTS_KEEP_DB=1 keeps it). Each prints its reconciliation and
# writes it to test-results/faults/. RELAY_SOAK_SECONDS sets the soak's length (default 60).
# Arguments: scenario files to run instead of all, then options for mocha.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DATABASE_URL:-}" ]; then
  echo "test:faults needs a PostgreSQL: set DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/postgres" >&2
  exit 2
fi
specs=()
while [ $# -gt 0 ] && [[ "$1" != -* ]]; do specs+=("$1"); shift; done
if [ ${#specs[@]} -eq 0 ]; then
  # All of issue 15's proof in one command: the API fuzz test too (it also runs in `npm test`,
  # on both databases), then the scenarios and the soak.
  npx mocha 'test/fuzz/*.test.ts' "$@"
  specs=('test/faults/*.faults.ts')
fi
exec npx mocha --config test/faults/.mocharc.json "${specs[@]}" "$@"
