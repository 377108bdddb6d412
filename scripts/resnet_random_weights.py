"""Full-width ResNet50 weights in torchvision's layout, randomly initialised (torchvision's own
initialisation, seeded): for running `trainer reproduce --model resnet50` and `trainer bench`
at full size where no pretrained file is at hand (no network, CI, a device machine).

    python3 scripts/resnet_random_weights.py OUT.safetensors   (or OUT.pth)
"""

import sys

import torch
import torchvision


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    torch.manual_seed(0)
    state = torchvision.models.resnet50(weights=None).state_dict()
    if out.endswith(".pth"):
        torch.save(state, out)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, out)
    print(f"{out}: {len(state)} tensors")


if __name__ == "__main__":
    main()
