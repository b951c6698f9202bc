#!/usr/bin/env bash
# Lays out what an image contains, into <outdir>: the bundled dist/ and the runtime packages the
# bundle leaves external. Used by Dockerfile.sidecar and Dockerfile.operator, and by
# test/image-layout.test.ts, which runs the binary from such a directory (no Docker engine runs in
# CI, so this is how the images' file sets are tested).
#   scripts/image-layout.sh sidecar|operator <outdir>     (run after `npm run build`)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: image-layout.sh sidecar|operator <outdir>}
out=${2:?usage: image-layout.sh sidecar|operator <outdir>}
case "$kind" in
  # The sidecar loads only cedar-wasm (when a config has policies) and @slack/web-api (standalone
  # approvals); it must never carry @kubernetes/client-node. Every agent pod pulls this image.
  sidecar) packages='["@cedar-policy/cedar-wasm", "@slack/web-api"]' ;;
  operator) packages='null' ;;
  *) echo "image-layout.sh: unknown kind '$kind' (sidecar or operator)" >&2; exit 2 ;;
esac
mkdir -p "$out"
rm -rf "$out/dist"
mkdir -p "$out/dist"
cp dist/*.js "$out/dist/"
mkdir -p "$out/dist/scripts"
cp dist/scripts/*.js "$out/dist/scripts/" 2>/dev/null || true
# package.json with the runtime dependencies of this kind, at the versions package-lock.json pins.
# shellcheck disable=SC2016 # the ${…} below are JavaScript's
node -e '
  const pkg = require("./package.json");
  const want = JSON.parse(process.argv[1]);
  const deps = want ? Object.fromEntries(want.map((n) => [n, pkg.dependencies[n]])) : pkg.dependencies;
  for (const [n, v] of Object.entries(deps)) if (!v) throw new Error(`no dependency ${n} in package.json`);
  require("fs").writeFileSync(process.argv[2] + "/package.json", JSON.stringify({ name: "thoughtgate-" + process.argv[3], version: pkg.version, private: true, type: "module", dependencies: deps }, null, 2) + "\n");
' "$packages" "$out" "$kind"
cp package-lock.json "$out/package-lock.json"
# npm ci refuses a lock that does not match; npm install --omit=dev with the full lock keeps the
# pinned versions of everything it installs.
(cd "$out" && npm install --omit=dev --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
rm -f "$out/package-lock.json"
# Never loaded at run time: cedar-wasm's ESM and browser builds (the sidecar uses /nodejs), and type
# declarations that @slack/web-api lists as a dependency.
rm -rf "$out/node_modules/@cedar-policy/cedar-wasm/esm" "$out/node_modules/@cedar-policy/cedar-wasm/web" "$out/node_modules/@types"
echo "$out: $(du -sh "$out" | cut -f1) ($kind)"
