#!/usr/bin/env bash
# The GPU checks of issue 12 in one call, sized for one 10-minute command on a borrowed GPU
# machine (no network, nothing installed): our training throughput on wgpu beside PyTorch's
# (CUDA, eager and torch.compile, when that machine has torch), then as much of the CIFAR
# `paper` preset as fits, checkpointed so that a second call resumes it.
#
# Prepare here (x86-64), then run there from the repository root:
#   bash scripts/gpu-check.sh prepare          # packs .gpu/: trainer (gzip), MNIST, CIFAR parts
#   bash scripts/gpu-check.sh run OUT_DIR      # on the GPU machine: writes OUT_DIR/gpu-check.log,
#                                              # compare.json, and the CIFAR run's outputs
# .gpu/ is git-ignored; carry it. The CIFAR archive (about 160 MB) is over a carry's 64 MiB,
# so `prepare` splits it into parts of 40 MB (.gpu/cifar.partN; with the 14 MB tree each fits a carry) to be carried one per call
# into the same warm machine (`run` joins them when all are there); without it the CIFAR step
# is skipped and says so.
# Budget: compare about 3 minutes, percentiles at most 1.5, CIFAR the rest (RUN_SECONDS,
# default 300).
set -uo pipefail
cd "$(dirname "$0")/.."
GPU=.gpu

case "${1:-}" in
prepare)
    : "${CARGO_TARGET_DIR:=$HOME/.cache/hidden-neurons/target}"
    cargo build --release --locked -p trainer || exit 1
    mkdir -p "$GPU"
    gzip -c "$CARGO_TARGET_DIR/release/trainer" >"$GPU/trainer.gz"
    cifar=${CIFAR:-${XDG_CACHE_HOME:-$HOME/.cache}/hidden-neurons/data/cifar-10-binary.tar.gz}
    if [ -f "$cifar" ]; then
        split -b 40M -d -a 1 "$cifar" "$GPU/cifar.part"
        sha256sum "$cifar" | cut -d' ' -f1 >"$GPU/cifar.sha256"
    fi
    ls -la "$GPU"
    ;;
run)
    out=${2:?usage: gpu-check.sh run OUT_DIR}
    mkdir -p "$out"
    exec > >(tee "$out/gpu-check.log") 2>&1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "gpu-check: nvidia-smi not found"
    bin=$GPU/trainer
    [ -x "$bin" ] || { gunzip -c "$GPU/trainer.gz" >"$bin" && chmod +x "$bin"; } || { echo "gpu-check: no $GPU/trainer.gz: run 'prepare' here first and carry .gpu"; exit 1; }
    started=$(date +%s)

    echo "== training throughput: ours (wgpu) beside PyTorch (CUDA)"
    if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
        timeout 150 "$bin" compare --backend wgpu --torch-device cuda --json "$out/compare.json"
        timeout 90 "$bin" compare --backend wgpu --torch-device cuda --torch-compile --only cnn-paper --json "$out/compare-compiled.json"
    else
        echo "gpu-check: no PyTorch with CUDA on this machine: only our side"
        timeout 150 "$bin" compare --backend wgpu --ours-only --json "$out/compare.json"
    fi

    echo "== per-neuron percentiles on wgpu: the streamed selection beside the sort (issue 9)"
    timeout 90 "$bin" bench --percentiles --backend wgpu --percentile-sizes 1000000,10000000,100000000

    echo "== CIFAR paper preset on the GPU (resumes from $GPU/cifar-run)"
    if [ ! -f "$GPU/cifar-10-binary.tar.gz" ] && ls "$GPU"/cifar.part* >/dev/null 2>&1; then
        cat "$GPU"/cifar.part* >"$GPU/cifar-10-binary.tar.gz"
        if [ "$(sha256sum "$GPU/cifar-10-binary.tar.gz" | cut -d' ' -f1)" != "$(cat "$GPU/cifar.sha256")" ]; then
            echo "gpu-check: the CIFAR parts are not all here yet (carry each .gpu/cifar.partN in turn)"
            rm -f "$GPU/cifar-10-binary.tar.gz"
        fi
    fi
    if [ -f "$GPU/cifar-10-binary.tar.gz" ]; then
        left=$((${RUN_SECONDS:-300} - ($(date +%s) - started) + 270))
        t0=$(date +%s)
        timeout "$left" "$bin" reproduce --model cifar --preset paper --backend wgpu --data "$GPU/cifar-10-binary.tar.gz" \
            --out "$GPU/cifar-run" --resume
        echo "gpu-check: CIFAR paper preset ran $(($(date +%s) - t0)) s in this call (exit $?; 124 = stopped by the time limit, resumable)"
        for f in results.json report.html progress.json; do
            find "$GPU/cifar-run" -name "$f" -exec sh -c 'cp "$1" "$2/$(echo "$1" | tr / _)"' _ {} "$out" \;
        done
    else
        echo "gpu-check: no CIFAR archive in $GPU: skipped"
    fi
    ;;
*)
    echo "usage: bash scripts/gpu-check.sh prepare | run OUT_DIR" >&2
    exit 2
    ;;
esac
