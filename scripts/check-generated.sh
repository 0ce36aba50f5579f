#!/usr/bin/env bash
# Drift check: regenerates the client's types from the API document into a temporary file and
# compares them with the committed file. Exits 1, with the difference, when they differ.
#
#   scripts/check-generated.sh [spec] [generated]
#
# Defaults: openapi.yaml and client/src/schema.ts at the repository root (also settable with
# RELAY_SPEC and RELAY_GENERATED), so a test can point it at copies.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
spec="${1:-${RELAY_SPEC:-$root/openapi.yaml}}"
generated="${2:-${RELAY_GENERATED:-$root/client/src/schema.ts}}"

if [ ! -f "$spec" ]; then echo "check-generated: no API document at $spec" >&2; exit 2; fi
if [ ! -f "$generated" ]; then
  echo "check-generated: $generated is missing; run \`npm run generate\` and commit it" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The same command as `npm run generate`, into the temporary directory.
if ! "$root/node_modules/.bin/openapi-typescript" "$spec" -o "$tmp/schema.ts" >"$tmp/log" 2>&1; then
  cat "$tmp/log" >&2
  echo "check-generated: openapi-typescript failed on $spec" >&2
  exit 2
fi

if ! diff -u --label "$generated (committed)" --label "generated from $spec" "$generated" "$tmp/schema.ts" >"$tmp/diff"; then
  head -n 80 "$tmp/diff" >&2
  echo >&2
  echo "check-generated: $generated is out of date with $spec." >&2
  echo "Run \`npm run generate\` and commit client/src/schema.ts." >&2
  exit 1
fi
echo "check-generated: $generated matches $spec"
