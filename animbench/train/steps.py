"""The two optimised units of a training step as modules, so DistributedDataParallel sees ONE forward per
step for each (FOMM's own trick: its GeneratorFullModel / DiscriminatorFullModel).

`GeneratorStep` runs the keypoint detector (source, driving, and the equivariance-transformed driving frame) and
the generator, and returns the generator's loss terms; `DiscriminatorStep` runs the discriminator on the real,
fake and (with CutMix / PriorityCut) mixed images and returns its terms. The trainer wraps each in DDP when it
runs in several processes: gradients are then bucketed and all-reduced while the backward pass still runs.
"""
from __future__ import annotations

from typing import Dict

import torch
from torch import nn


class GeneratorStep(nn.Module):
    def __init__(self, trainer):
        super().__init__()
        self.kp_detector, self.generator = trainer.kp_detector, trainer.generator
        object.__setattr__(self, "trainer", trainer)  # not a submodule: its other networks are not trained here

    def forward(self, x: Dict[str, torch.Tensor], transform):
        from animbench.train import losses

        t = self.trainer
        tcfg, dcfg = t.cfg["train"], t.cfg["discriminator"]
        w = tcfg["loss_weights"]
        kp_s = self.kp_detector(x["source"])
        kp_d = self.kp_detector(x["driving"])
        gen = self.generator(x["source"], kp_driving=kp_d, kp_source=kp_s)
        fake, real = gen["prediction"], x["driving"]
        pyr_fake, pyr_real = t.pyramid(fake), t.pyramid(real)
        terms: Dict[str, torch.Tensor] = {}
        if t.vgg is not None:
            terms["perceptual"] = losses.perceptual_loss(t.vgg, pyr_fake, pyr_real, w["perceptual"])
        if t.disc is not None and w["generator_gan"]:
            d_fake, d_real = t._disc(pyr_fake["prediction_1"], kp_d), t._disc(pyr_real["prediction_1"], kp_d)
            adv = losses.gan_target_loss(d_fake["enc_logits"], 1.0, dcfg["gan_loss"])
            if "dec_logits" in d_fake:  # Eq. 6: the sum of the encoder's and the decoder's feedback
                adv = adv + losses.gan_target_loss(d_fake["dec_logits"], 1.0, dcfg["gan_loss"])
            terms["gen_gan"] = w["generator_gan"] * adv
            terms["feature_matching"] = losses.feature_matching(d_real["feature_maps"], d_fake["feature_maps"],
                                                                w["feature_matching"])
        terms.update(losses.equivariance_losses(self.kp_detector, real, kp_d, transform, w["equivariance_value"],
                                                w["equivariance_jacobian"], tcfg["align_corners"]))
        return terms, gen, kp_d


class DiscriminatorStep(nn.Module):
    def __init__(self, trainer):
        super().__init__()
        self.disc = trainer.disc
        object.__setattr__(self, "trainer", trainer)

    def forward(self, x, gen, kp_d, g, epoch) -> Dict[str, torch.Tensor]:
        return self.trainer._disc_losses(x, gen, kp_d, g, epoch)


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    # buffers (BatchNorm statistics) are broadcast from rank 0 after each step by the trainer, as before
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                   broadcast_buffers=False)
