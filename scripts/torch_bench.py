#!/usr/bin/env python3
"""PyTorch twin of `trainer bench`: the same models, batch sizes and optimizer, read from the same
file (bench/workloads.json). `trainer compare` runs it beside our own numbers; it can also be run
alone:

    python3 scripts/torch_bench.py [--only cnn-fast] [--device cpu|cuda] [--compile] [--profile]

Prints one JSON object per workload on stdout (samples/s), and with --profile a per-op table of
one training step on stderr. Needs torch (pip install torch); it is never needed by the tests.
"""

import argparse
import json
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def build(workload, nn):
    """The model of `workload`, as shared/src/model builds it."""
    model, hidden = workload["model"], workload.get("hidden", [])
    if model == "resnet50":
        # shared/src/model/resnet.rs is torchvision's layout (tests/resnet.rs checks it).
        import torchvision

        side = workload.get("side", 224)
        return torchvision.models.resnet50(), (3, side, side)
    family, activation = model.split("-")
    act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "linear": nn.Identity}[activation]
    layers = []
    if family == "mlp":
        width = 784
        for h in hidden:
            # shared/src/model/mlp.rs: dense, activation, dropout 0.5
            layers += [nn.Linear(width, h), act(), nn.Dropout(0.5)]
            width = h
        layers.append(nn.Linear(width, 10))
        return nn.Sequential(*layers), (784,)
    if family == "cnn":
        # shared/src/model/cnn.rs: per stage (max-pool 2x2 before every stage but the first)
        # three 3x3 convs (padding 1, bias) each followed by batch-norm and the activation;
        # global average pooling; dense to 10 classes.
        c_in = 3
        for stage, width in enumerate(hidden):
            if stage > 0:
                layers.append(nn.MaxPool2d(2))
            for _ in range(3):
                layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.BatchNorm2d(width), act()]
                c_in = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 10)]
        return nn.Sequential(*layers), (3, 32, 32)
    raise SystemExit(f"bench/workloads.json: unknown model '{model}'")


def run(workload, config, args, torch):
    nn = torch.nn
    device = torch.device(args.device)
    torch.manual_seed(1)
    model, shape = build(workload, nn)
    model = model.to(device).train()
    adam = config["adam"]
    optim = torch.optim.Adam(model.parameters(), lr=adam["lr"], betas=(adam["beta1"], adam["beta2"]), eps=adam["eps"])
    step_model = torch.compile(model) if args.compile else model
    loss_fn = nn.CrossEntropyLoss()
    batch = workload["batch"]
    # Like `trainer bench`: uint8 images in host memory, each batch gathered and normalised.
    samples = {1: 60_000, 3: 5_000}[len(shape)] if shape[-1] <= 32 or len(shape) == 1 else 64
    images = torch.randint(0, 256, (samples, *shape), dtype=torch.uint8)
    labels = torch.randint(0, 10, (samples,))
    order = torch.randperm(samples)

    def step(i):
        idx = order[(i * batch) % (samples - batch):][:batch]
        x = ((images[idx].float() / 255.0 - 0.5) / 0.25).to(device, non_blocking=True)
        y = labels[idx].to(device, non_blocking=True)
        optim.zero_grad(set_to_none=True)
        loss = loss_fn(step_model(x), y)
        loss.backward()
        optim.step()
        return loss

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for i in range(config["warmup_steps"]):
        step(i).item()
    sync()
    steps = args.steps or workload["steps"]
    started = time.perf_counter()
    for i in range(steps):
        loss = step(i)
    loss.item()
    sync()
    seconds = time.perf_counter() - started
    result = {
        "name": workload["name"],
        "samples_per_s": steps * batch / seconds,
        "ms_per_step": 1e3 * seconds / steps,
        "steps": steps,
        "batch": batch,
        "torch": torch.__version__,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "compiled": args.compile,
    }
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            for i in range(3):
                step(i).item()
        print(f"# {workload['name']}: PyTorch per-op time over 3 training steps", file=sys.stderr)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15), file=sys.stderr)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default=str(ROOT / "bench" / "workloads.json"))
    parser.add_argument("--only", action="append", help="workload name (repeatable); default: all")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--steps", type=int, help="override each workload's timed steps")
    parser.add_argument("--profile", action="store_true", help="per-op table of 3 steps on stderr")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("torch_bench.py: PyTorch is not installed (pip install torch)", file=sys.stderr)
        return 3
    try:
        config = json.loads(pathlib.Path(args.workloads).read_text())
        workloads = config["workloads"]
    except (OSError, ValueError, KeyError) as e:
        print(f"torch_bench.py: {args.workloads}: {e}", file=sys.stderr)
        return 2
    names = [w["name"] for w in workloads]
    for name in args.only or []:
        if name not in names:
            print(f"torch_bench.py: --only {name}: no such workload in {args.workloads} ({', '.join(names)})", file=sys.stderr)
            return 2
    for w in workloads:
        if args.only and w["name"] not in args.only:
            continue
        print(json.dumps(run(w, config, args, torch)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
