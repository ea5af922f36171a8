#!/usr/bin/env bash
# Runs the storefront's end-to-end browser test against a running Car Build
# stack (CARBUILD_URL, default http://127.0.0.1:8000), installing what is
# missing first: Debian's chromium (apt) and playwright-core and axe-core
# (npm, pinned in package-lock.json). Screenshots go to ARTIFACTS_DIR (default ./artifacts).
# Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")"

export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM_PATH" ]; then
  echo "run.sh: $CHROMIUM_PATH not found; installing Debian's chromium" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "run.sh: node and npm (Node.js >= 20) are needed: apt-get install -y nodejs npm" >&2
  exit 1
fi

# npm ci when any locked package is missing or at another version.
# shellcheck disable=SC2016 # JavaScript, not shell
if ! node -e '
  const lock = require("./package-lock.json").packages;
  for (const [dir, { version }] of Object.entries(lock)) {
    if (!dir) continue;
    try { if (require(`./${dir}/package.json`).version === version) continue; } catch {}
    process.exit(1);
  }' 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
fi

exec node --test --test-reporter=spec storefront.test.js
