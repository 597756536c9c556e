"""VGG-19 in plain torch with torchvision's key names (torchvision cannot be imported next to CPU torch here).

Weights: `random` (seeded; tests and the demo — recorded in the run config), a local file, or `torchvision`
(torchvision's published vgg19-dcbb9e9d.pth, downloaded into the torch hub cache on first use).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from animbench.errors import UserError

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
_PLAN = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
# relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 end after these `features` indices (FOMM's slices)
_SLICE_ENDS = (2, 7, 12, 21, 30)


class VGG19Features(nn.Module):
    """`features` of torchvision's VGG-19 (indices 0..36) returning FOMM's five ReLU outputs."""

    def __init__(self):
        super().__init__()
        layers, channels = [], 3
        for item in _PLAN:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        out, h, start = [], (x - self.mean) / self.std, 0
        for end in _SLICE_ENDS:
            for i in range(start, end):
                h = self.features[i](h)
            out.append(h)
            start = end
        return out


def load_vgg19(weights: str = "random", seed: int = 0) -> VGG19Features:
    torch.manual_seed(seed)
    model = VGG19Features()
    if weights == "random":
        pass
    elif weights == "torchvision":
        try:
            state = torch.hub.load_state_dict_from_url(VGG19_URL, progress=True, map_location="cpu")
        except Exception as e:  # no network and nothing cached
            raise UserError(f"cannot get VGG-19 weights ({type(e).__name__}); put vgg19-dcbb9e9d.pth in "
                            f"{torch.hub.get_dir()}/checkpoints or pass --vgg-weights PATH") from None
        model.load_state_dict({k: v for k, v in state.items() if k.startswith("features.")}, strict=True)
    else:
        path = Path(weights)
        if not path.is_file():
            raise UserError(f"--vgg-weights {weights}: no such file (or use 'torchvision' to download, 'random')")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict({k: v for k, v in state.items() if k.startswith("features.")}, strict=True)
        except Exception as e:  # not a torch file, or not VGG-19's features
            raise UserError(f"--vgg-weights {weights}: not torchvision's VGG-19 weights ({type(e).__name__}); "
                            f"pass vgg19-dcbb9e9d.pth, 'torchvision' or 'random'") from None
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()
