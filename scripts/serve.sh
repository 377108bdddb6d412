#!/usr/bin/env bash
# The page on localhost: installs what is missing, builds (release), serves dist/ and prints the URL.
# PORT=8080 by default. The first build takes a while (burn + leptos to WebAssembly with fat LTO).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-web.sh web-release
port="${PORT:-8080}"

exec node scripts/serve.mjs dist "$port"
