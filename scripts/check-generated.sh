#!/usr/bin/env bash
# Drift check: regenerates the client's types from the API document into a temporary file and
# compares them with the committed file, and compares the conformance kit's copy of the
# document with it. Exits 1, with the difference, when either differs.
#
#   scripts/check-generated.sh [spec] [generated] [kit-copy]
#
# Defaults: openapi.yaml and client/src/schema.ts at the repository root (also settable with
# RELAY_SPEC and RELAY_GENERATED), so a test can point it at copies. The kit's copy
# (conformance/openapi.yaml, which `npm run build` writes) is compared when the document is the
# repository's own, or when a copy is named (third argument or RELAY_KIT_SPEC).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
spec="${1:-${RELAY_SPEC:-$root/openapi.yaml}}"
generated="${2:-${RELAY_GENERATED:-$root/client/src/schema.ts}}"
kit="${3:-${RELAY_KIT_SPEC:-}}"
if [ -z "$kit" ] && [ "$spec" = "$root/openapi.yaml" ]; then kit="$root/conformance/openapi.yaml"; fi

if [ -n "$kit" ] && ! cmp -s "$spec" "$kit"; then
  if [ -f "$kit" ]; then diff -u --label "$kit (the kit's copy)" --label "$spec" "$kit" "$spec" | head -n 40 >&2 || true; fi
  echo "check-generated: $kit is missing or differs from $spec; run \`npm run build\` (it copies the document)." >&2
  exit 1
fi

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
echo "check-generated: $generated matches $spec${kit:+, and so does $kit}"
