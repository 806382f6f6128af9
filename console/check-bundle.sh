#!/usr/bin/env bash
# The committed bundle (app/console/static/console.js) is what `npm ci && npm run build` makes
# from console/src and package-lock.json: rebuild it and fail if it differs, so the service and
# its image never need Node. Run by .ci/run; after changing the console, run `npm run build` in
# console/ and commit the bundle with the change.
set -euo pipefail
cd "$(dirname "$0")"
bundle=../app/console/static/console.js
committed=$(mktemp)
trap 'rm -f "$committed"' EXIT
cp "$bundle" "$committed"
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
if ! cmp -s "$committed" "$bundle"; then
    echo "error: $bundle differs from what console/ builds: run \`npm run build\` in console/ and commit the bundle" >&2
    exit 1
fi
echo "console bundle: up to date ($(wc -c <"$bundle") bytes)"
