#!/usr/bin/env bash
# Builds the page into dist/ with trunk. Profile web-release (default: size-optimised, fat LTO)
# or web-dev (fast incremental builds while developing): scripts/build-web.sh [web-dev].
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-web-release}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hidden-neurons/target}"
# npm's binaryen 132 wasm-opt first on PATH (see Trunk.toml).
export PATH="$PWD/tests/browser/node_modules/.bin:$HOME/.cargo/bin:$PATH"
cargo fetch --locked >/dev/null
if [ "$profile" = web-release ]; then
    trunk build index.html --release --cargo-profile web-release --offline
else
    trunk build index.html --cargo-profile "$profile" --offline
fi
# Fashion-MNIST, which the page fetches on demand, comes from Debian's dataset-fashion-mnist
# (30 MB: not in the repository). Without it the page says so when it is chosen.
fashion="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
if [ -f "$fashion/train-images-idx3-ubyte.gz" ]; then
    mkdir -p dist/data/fashion-mnist
    cp "$fashion"/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz dist/data/fashion-mnist/
else
    echo "build-web: no Fashion-MNIST at $fashion (apt install dataset-fashion-mnist): choosing it on the page will say so" >&2
fi
for f in dist/web_bg.wasm dist/worker_bg.wasm dist/worker_gpu_bg.wasm; do
    printf 'build-web: %s: %s bytes, %s gzipped\n' "$f" "$(stat -c %s "$f")" "$(gzip -9c "$f" | wc -c)"
done
