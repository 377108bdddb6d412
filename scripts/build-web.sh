#!/usr/bin/env bash
# Builds the page into dist/ with trunk: scripts/build-web.sh [PROFILE] [PART]
#   PROFILE: web-release (default: fat LTO, wasm-opt: what a deployment serves), web-serve
#            (web-release's compile without wasm-opt: what scripts/serve.sh builds, minutes
#            sooner; docs/building.md) or web-dev (fast incremental builds)
#   PART:    all (default), page (the page and the CPU worker: all a CPU run needs), or gpu (the
#            WebGPU worker, burn's wgpu stack: the slowest build; added to an existing dist/)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-web-release}"
part="${2:-all}"
case "$part" in all|page|gpu) ;; *) echo "build-web: PART is all, page or gpu, not '$part'" >&2; exit 2 ;; esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hidden-neurons/target}"
# npm's binaryen 132 wasm-opt first on PATH (see Trunk.toml).
export PATH="$PWD/tests/browser/node_modules/.bin:$HOME/.cargo/bin:$PATH"
cargo fetch --locked >/dev/null
build() {
    case "$profile" in
        web-release) trunk build "$@" --release --cargo-profile web-release --offline ;;
        # trunk runs wasm-opt only in release mode; web-serve shares web-release's compiled crates.
        web-serve) trunk build "$@" --cargo-profile web-release --offline ;;
        *) trunk build "$@" --cargo-profile "$profile" --offline ;;
    esac
}
report() {
    for f in "$@"; do
        printf 'build-web: %s: %s bytes, %s gzipped\n' "$f" "$(stat -c %s "$f")" "$(gzip -9c "$f" | wc -c)"
    done
}
if [ "$part" != gpu ]; then
    # trunk replaces dist/ as a whole, a WebGPU worker built earlier included: build it again after.
    build index.html
    # Fashion-MNIST, which the page fetches on demand, comes from Debian's dataset-fashion-mnist
    # (30 MB: not in the repository). Without it the page says so when it is chosen.
    fashion="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
    if [ -f "$fashion/train-images-idx3-ubyte.gz" ]; then
        mkdir -p dist/data/fashion-mnist
        cp "$fashion"/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz dist/data/fashion-mnist/
    else
        echo "build-web: no Fashion-MNIST at $fashion (apt install dataset-fashion-mnist): choosing it on the page will say so" >&2
    fi
    report dist/web_bg.wasm dist/worker_bg.wasm
fi
if [ "$part" != page ]; then
    [ -f dist/index.html ] || { echo "build-web: dist/index.html not found: build the page first (scripts/build-web.sh $profile page)" >&2; exit 1; }
    staging="$CARGO_TARGET_DIR/web-gpu-dist"
    build web/worker-gpu/index.html --dist "$staging"
    # The loader last, each file renamed into place: a page that finds the loader finds the rest.
    for f in worker_gpu_bg.wasm worker_gpu.js worker_gpu_loader.js; do
        cp "$staging/$f" "dist/.$f.tmp" && mv "dist/.$f.tmp" "dist/$f"
    done
    report dist/worker_gpu_bg.wasm
fi
