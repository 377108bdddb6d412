#!/usr/bin/env bash
# The page on localhost: installs what is missing, builds the page and its CPU worker (the release
# compile without wasm-opt, which would add minutes for a few percent: build-web.sh web-serve),
# serves dist/ and prints the URL, then builds the WebGPU worker while the page is already up
# (a run that asks for WebGPU meanwhile trains on the CPU; reload once it is built).
# PORT=8080 by default. The first build takes a while (burn + leptos to WebAssembly with fat LTO).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-web.sh web-serve page
port="${PORT:-8080}"
node scripts/serve.mjs dist "$port" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
echo "serve: the page trains on the CPU now; building the WebGPU worker in the meantime (for a GPU in the browser)"
if bash scripts/build-web.sh web-serve gpu; then
    echo "serve: the WebGPU worker is built: reload the page to train on a GPU"
else
    echo "serve: the WebGPU worker did not build; the page still trains on the CPU" >&2
fi
wait "$server"
