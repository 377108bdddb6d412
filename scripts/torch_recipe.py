#!/usr/bin/env python3
"""PyTorch twin of the `cpu` CIFAR preset's training (`trainer reproduce --model cifar --preset cpu`),
augmentation and data loading included, to set its speed beside ours:

    python3 scripts/torch_recipe.py --data cifar-10-binary.tar.gz [--train-samples 10000]
        [--epochs 10] [--stop-after 1] [--hidden 16,32,64,128] [--activation relu] [--threads 2]

The recipe as shared/src/train.rs's `TrainConfig::cifar_cpu` states it: the 12-layer CNN with
batch-norm (scripts/torch_bench.py builds it), batch 128, SGD with Nesterov momentum 0.9 and weight
decay 5e-4, the one-cycle rate of `Schedule::OneCycle` (a quarter warming up from 0.1/25 to 0.1,
then linear to 0), label smoothing 0.1, each epoch a random crop of the image zero-padded by 4
(0 after normalisation, as `augment_into` pads) and a random left-right flip, pixels normalised by
the training images' per-channel mean and standard deviation. Prints one JSON object per epoch:
the training loop's seconds and samples/s, then the test pass's seconds and accuracy (ours counts
its per-epoch test pass in `train_seconds`; `with_test_seconds` is the number to set beside it).
Needs torch; never needed by the tests.
"""

import argparse
import json
import pathlib
import sys
import tarfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from torch_bench import build  # noqa: E402

RECORD = 1 + 3 * 32 * 32


def read_cifar(path):
    """(train images, train labels, test images, test labels) from the binary archive or folder."""
    path = pathlib.Path(path)
    files = {}
    if path.is_dir():
        for f in path.rglob("*.bin"):
            files[f.name] = f.read_bytes()
    else:
        with tarfile.open(path) as tar:
            for m in tar.getmembers():
                if m.isfile() and m.name.endswith(".bin"):
                    files[pathlib.Path(m.name).name] = tar.extractfile(m).read()

    def parse(names):
        raw = b"".join(files[n] for n in names)
        if len(raw) % RECORD:
            raise SystemExit(f"{path}: {names}: {len(raw)} bytes is not a whole number of {RECORD}-byte records")
        a = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)
        return a[:, 1:].reshape(-1, 3, 32, 32), a[:, 0].astype(np.int64)

    missing = [n for n in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"] if n not in files]
    if missing:
        raise SystemExit(f"{path}: no {', '.join(missing)}")
    return (*parse([f"data_batch_{i}.bin" for i in range(1, 6)]), *parse(["test_batch.bin"]))


def one_cycle(step, total, peak=0.1, warmup=0.25):
    t = step / max(total, 1)
    if t < warmup:
        return peak / 25.0 + (peak - peak / 25.0) * t / warmup
    return peak * max((1.0 - t) / (1.0 - warmup), 0.0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="cifar-10-binary.tar.gz or the folder it unpacks to")
    p.add_argument("--train-samples", type=int, default=50_000)
    p.add_argument("--epochs", type=int, default=10, help="the schedule's length")
    p.add_argument("--stop-after", type=int, help="stop after this many epochs (the schedule stays --epochs long)")
    p.add_argument("--hidden", default="16,32,64,128")
    p.add_argument("--activation", default="relu", choices=["relu", "linear"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--test-samples", type=int, default=10_000)
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("torch_recipe.py: PyTorch is not installed (pip install torch)", file=sys.stderr)
        return 3
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    xtr, ytr, xte, yte = read_cifar(args.data)
    xtr, ytr = xtr[: args.train_samples], ytr[: args.train_samples]
    xte, yte = xte[: args.test_samples], yte[: args.test_samples]
    scaled = xtr.astype(np.float32) / 255.0
    mean = scaled.mean(axis=(0, 2, 3)).reshape(1, 3, 1, 1)
    std = scaled.std(axis=(0, 2, 3)).reshape(1, 3, 1, 1)
    del scaled
    load_seconds = time.perf_counter() - started

    workload = {"model": f"cnn-{args.activation}", "hidden": [int(h) for h in args.hidden.split(",")]}
    model, _ = build(workload, torch.nn)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    batch = 128
    steps_per_epoch = -(-len(xtr) // batch)
    total = steps_per_epoch * args.epochs
    step = 0
    print(json.dumps({"load_seconds": load_seconds, "train_samples": len(xtr), "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for epoch in range(1, (args.stop_after or args.epochs) + 1):
        model.train()
        t0 = time.perf_counter()
        order = rng.permutation(len(xtr))
        for b in range(steps_per_epoch):
            idx = order[b * batch : (b + 1) * batch]
            n = len(idx)
            # Augmentation on the host, per image, as ours does: pad 4, crop 32, flip.
            padded = np.zeros((n, 3, 40, 40), dtype=np.float32)
            padded[:, :, 4:36, 4:36] = (xtr[idx].astype(np.float32) / 255.0 - mean) / std
            dx, dy, flip = rng.integers(0, 9, n), rng.integers(0, 9, n), rng.integers(0, 2, n)
            x = np.empty((n, 3, 32, 32), dtype=np.float32)
            for i in range(n):
                crop = padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32]
                x[i] = crop[:, :, ::-1] if flip[i] else crop
            for g in opt.param_groups:
                g["lr"] = one_cycle(step, total)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(ytr[idx]))
            loss.backward()
            opt.step()
            step += 1
        loss = loss.item()
        seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        model.eval()
        correct = 0
        with torch.no_grad():
            for b in range(0, len(xte), 1000):
                x = torch.from_numpy(((xte[b : b + 1000].astype(np.float32) / 255.0 - mean) / std).astype(np.float32))
                correct += int((model(x).argmax(1).numpy() == yte[b : b + 1000]).sum())
        test_seconds = time.perf_counter() - t1
        out = {
            "epoch": epoch,
            "seconds": seconds,
            "samples_per_s": len(xtr) / seconds,
            "test_seconds": test_seconds,
            "with_test_seconds": seconds + test_seconds,
            "test_accuracy": correct / len(xte),
            "last_loss": loss,
        }
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
