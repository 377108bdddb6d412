#!/usr/bin/env bash
# The test command: set up, then build and run every test in release mode (training in a debug
# build would be far too slow). Shares a persistent target folder with CI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hidden-neurons/target}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
cargo test --release --workspace --locked
