#!/usr/bin/env bash
# The test command: set up, run every Rust test in release mode (training in a debug build would
# be far too slow), then build the page and run the browser tests and the TF.js benchmark in
# headless Chromium. Shares a persistent target folder with CI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hidden-neurons/target}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
export PATH="$HOME/.cargo/bin:$PATH"
cargo test --release --workspace --locked
cargo build --release -p trainer --locked
bash scripts/build-web.sh "${WEB_PROFILE:-web-release}"
TRAINER_BIN="$CARGO_TARGET_DIR/release/trainer" node tests/browser/run.mjs
