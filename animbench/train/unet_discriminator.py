"""The U-Net discriminator of PriorityCut (Table A1).

Encoder = the FOMM+ discriminator itself (FOMM's 4×4 valid-conv DownBlock2d stack with InstanceNorm, LeakyReLU
0.2, average pooling; its 1×1 conv is the encoder head "Conv2d 8ch → 1"). ch = 64 ↔ FOMM's block_expansion 32
(blocks output ch, 2ch, 4ch, 8ch). Decoder = the mirror: each up block resizes to the matching encoder
resolution (FOMM's valid convs give 126/61/29/26 px at 256², not powers of two, so resizing is by size,
nearest), concatenates the skip and applies conv 3×3 → InstanceNorm → LeakyReLU 0.2; the last block returns to
the input size; a 1×1 conv gives per-pixel logits (the sigmoid of Table A1 is applied by the loss). Choices the
paper leaves open (prioritycut.md §6 item 17) are constructor options.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from animbench.models.fomm.discriminator import Discriminator


class UpConvBlock(nn.Module):
    def __init__(self, in_features, out_features, norm: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.InstanceNorm2d(out_features, affine=True) if norm else None

    def forward(self, x, size):
        out = self.conv(F.interpolate(x, size=size, mode="nearest"))
        if self.norm is not None:
            out = self.norm(out)
        return F.leaky_relu(out, 0.2)


class UNetDiscriminator(nn.Module):
    def __init__(self, num_channels=3, ch=64, num_blocks=4, max_features=512, sn=False, use_kp=False, num_kp=10,
                 kp_variance=0.01, decoder_norm=True, **unused):
        super().__init__()
        self.encoder = Discriminator(num_channels=num_channels, block_expansion=ch // 2, num_blocks=num_blocks,
                                     max_features=max_features, sn=sn, use_kp=use_kp, num_kp=num_kp,
                                     kp_variance=kp_variance)
        widths = [min(max_features, ch * 2 ** i) for i in range(num_blocks)]      # ch, 2ch, 4ch, 8ch
        ups = []
        for i in reversed(range(num_blocks)):                                     # 8ch->4ch, (4+4)->2ch, ...
            in_f = widths[i] if i == num_blocks - 1 else 2 * widths[i]
            out_f = widths[i - 1] if i > 0 else widths[0]
            ups.append(UpConvBlock(in_f, out_f, norm=decoder_norm))
        self.up_blocks = nn.ModuleList(ups)
        self.head = nn.Conv2d(widths[0], 1, kernel_size=1)

    def forward(self, x, kp: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, object]:
        feature_maps, enc_logits = self.encoder(x, kp)
        out = feature_maps[-1]
        skips = feature_maps[:-1]
        for i, block in enumerate(self.up_blocks):
            if i < len(skips):
                skip = skips[-1 - i]
                out = torch.cat([block(out, skip.shape[2:]), skip], dim=1)
            else:
                out = block(out, x.shape[2:])
        return {"feature_maps": feature_maps, "enc_logits": enc_logits, "dec_logits": self.head(out)}
