#!/usr/bin/env bash
# Installs what building, serving and testing need on a fresh Debian machine with rustup and
# package-registry access only. Safe to run again: it skips what is there.
#   apt:   Mesa's lavapipe (software Vulkan, so the wgpu path runs without a GPU), Chromium and
#          Node.js (browser tests), Fashion-MNIST (served by the page)
#   rustup: the wasm32-unknown-unknown target
#   cargo: trunk 0.21.14 and wasm-bindgen-cli at the exact wasm-bindgen version of Cargo.lock
#          (trunk must never download them itself: Trunk.toml says offline)
#   npm:   playwright-core, binaryen 132 (wasm-opt; Debian's 108 breaks the page), TensorFlow.js
#          (benchmark only), from tests/browser/package-lock.json
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
need_apt=()
# dataset-fashion-mnist: the page serves Fashion-MNIST from it (scripts/build-web.sh).
for pkg in mesa-vulkan-drivers libvulkan1 dataset-fashion-mnist; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v chromium >/dev/null || need_apt+=(chromium)
# Any Node.js >= 18 will do (Debian's, or NodeSource's, which bundles npm).
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
if ((${#need_apt[@]})); then
    echo "setup: installing ${need_apt[*]} (apt)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first (https://rustup.rs)" >&2; exit 1; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "setup: adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi

# Tools are built into their own target folder so that they never disturb the project's.
tool_target="${HN_TOOLS_TARGET:-$HOME/.cache/hidden-neurons/tools-target}"
if [ "$(trunk --version 2>/dev/null)" != "trunk 0.21.14" ]; then
    echo "setup: cargo install trunk 0.21.14 (once)"
    # trunk's own release profile (fat LTO, one codegen unit) makes its install the longest wait
    # of a fresh clone; it is a build tool, so plain optimisation serves. Without default
    # features it has no TLS stack and no update check: the page is served by scripts/serve.mjs
    # and Trunk.toml keeps trunk offline.
    CARGO_TARGET_DIR="$tool_target" CARGO_PROFILE_RELEASE_LTO=false \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        cargo install trunk --version 0.21.14 --locked --no-default-features
fi
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $bindgen_version" ]; then
    echo "setup: cargo install wasm-bindgen-cli $bindgen_version (about 8 minutes, once)"
    # Not --locked: its own lockfile pins a yanked crate.
    CARGO_TARGET_DIR="$tool_target" cargo install wasm-bindgen-cli --version "$bindgen_version"
fi

if ! (cd tests/browser && npm ls --depth=0 >/dev/null 2>&1); then
    echo "setup: npm ci in tests/browser"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
