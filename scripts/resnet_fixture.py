#!/usr/bin/env python3
"""Writes the ResNet parity fixture of tests/resnet.rs (committed; the Rust tests never run this).

A ResNet50-layout network (torchvision's module names and block layout) of reduced width, with
random weights and non-trivial batch-norm statistics, saved as safetensors and as a PyTorch state
dict, plus a fixed input batch and PyTorch's logits and the pre-activations of a few studied
layers (eval mode). Also the names and shapes of torchvision's full-width resnet50 state dict, so
that a Rust test can check that the full-width model asks for exactly those tensors.

The reduced network is checked here to be torchvision's own architecture: at full width it loads
torchvision.models.resnet50()'s state dict strictly and gives the same outputs.

    pip install torch torchvision safetensors
    python3 scripts/resnet_fixture.py            # writes tests/fixtures/resnet/
"""

import json
import os
import sys

import torch
from torch import nn

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "resnet")
SIDE, WIDTH, BLOCKS, CLASSES, BATCH = 64, 4, [3, 4, 6, 3], 10, 2
# Studied layers compared (Keras names): conv1, the first block (with a projection), a middle
# block and the last.
COMPARED = ["conv1", "2a", "3d", "4f", "5c"]


class Bottleneck(nn.Module):
    def __init__(self, c_in, mid, stride):
        super().__init__()
        out = 4 * mid
        self.conv1 = nn.Conv2d(c_in, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or c_in != out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))

    def pre(self, x):
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return h + (x if self.downsample is None else self.downsample(x))


class ResNet(nn.Module):
    def __init__(self, width, blocks, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c_in = width
        for s, n in enumerate(blocks):
            mid = width << s
            layer = []
            for b in range(n):
                layer.append(Bottleneck(c_in, mid, 2 if (b == 0 and s > 0) else 1))
                c_in = 4 * mid
            setattr(self, f"layer{s + 1}", nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x, keep=None):
        z = self.bn1(self.conv1(x))
        if keep is not None:
            keep["conv1"] = z
        h = self.maxpool(self.relu(z))
        for s in range(4):
            for b, block in enumerate(getattr(self, f"layer{s + 1}")):
                z = block.pre(h)
                if keep is not None:
                    keep[f"{s + 2}{chr(ord('a') + b)}"] = z
                h = self.relu(z)
        return self.fc(torch.flatten(self.avgpool(h), 1))


def same_as_torchvision():
    import torchvision

    tv = torchvision.models.resnet50(weights=None).eval()
    ours = ResNet(64, BLOCKS, 1000).eval()
    ours.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(tv(x), ours(x), atol=1e-5), "the fixture's ResNet is not torchvision's resnet50"
    return [[k, list(v.shape)] for k, v in tv.state_dict().items()]


def main():
    torch.manual_seed(20261201)
    keys = same_as_torchvision()
    model = ResNet(WIDTH, BLOCKS, CLASSES)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(7)
    model.eval()
    x = torch.randn(BATCH, 3, SIDE, SIDE)
    keep = {}
    with torch.no_grad():
        logits = model(x, keep)
    os.makedirs(OUT, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, os.path.join(OUT, "tiny.pth"))
    from safetensors.torch import save_file

    save_file(state, os.path.join(OUT, "tiny.safetensors"))
    # Pre-activations as the Rust tap sees them: [batch, positions, channels], row-major.
    layers = {n: {"shape": list(keep[n].shape), "values": keep[n].permute(0, 2, 3, 1).reshape(-1).tolist()} for n in COMPARED}
    expected = {
        "config": {"side": SIDE, "width": WIDTH, "blocks": BLOCKS, "classes": CLASSES},
        "torch": torch.__version__,
        "input": x.reshape(-1).tolist(),
        "logits": logits.reshape(-1).tolist(),
        "layers": layers,
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f)
    with open(os.path.join(OUT, "torchvision_resnet50_keys.json"), "w") as f:
        json.dump(keys, f, indent=0)
    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
