"""The training loop (FOMM's, plus the PriorityCut ladder's discriminators and augmentation).

Per iteration, as FOMM: generator + keypoint-detector losses, backward, both optimisers step; then, for
variants with a discriminator, its loss on the DETACHED prediction, backward, step. Every random draw of a
step (equivariance transform, CutMix box, PriorityCut k, augmentation coin) comes from a generator seeded by
(seed, step, rank) and every batch from (seed, epoch, index), so a resumed run continues exactly as an
uninterrupted one (CPU) and nothing but weights/optimisers/schedulers needs saving.
"""
from __future__ import annotations

import copy
import io
import json
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch

from animbench.errors import UserError
from animbench.data.strips import titled_grid
from animbench.progress import progress_options
from animbench.results.store import atomic_write_bytes


class TrainingDiverged(UserError):
    pass


SAMPLE_COLUMNS = ("source", "driving", "prediction", "occlusion", "PC mask k=30", "augmented")


def read_log(path: Path) -> list:
    """The records of losses.jsonl; a torn line (a kill mid-write) is dropped."""
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0]))


class Trainer:
    def __init__(self, cfg: dict, out: Path, device: str = "cpu", seed: int = 0, amp: Optional[str] = None,
                 channels_last: bool = False, rank: int = 0, world_size: int = 1, progress: bool = True):
        from animbench.data import open_dataset
        from animbench.data.pairs import FramePairs
        from animbench.models.fomm import build_networks, load_config
        from animbench.models.fomm.discriminator import MultiScaleDiscriminator
        from animbench.train.losses import ImagePyramid
        from animbench.train.unet_discriminator import UNetDiscriminator
        from animbench.train.vgg import load_vgg19

        self.cfg, self.out, self.device, self.seed = cfg, Path(out), torch.device(device), seed
        self.rank, self.world_size, self.progress = rank, world_size, progress and rank == 0
        self.amp = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[amp]
        tcfg, dcfg = cfg["train"], cfg["discriminator"]
        self.model_config = load_config(cfg["model"])
        # inputs first (no VGG download before we know the data is there)
        dsc = cfg["dataset"]
        dataset = open_dataset(dsc["name"], root=dsc.get("root"), split="train", frame_size=tuple(dsc["frame_size"]))
        native = tuple(self.model_config.get("dataset_params", {}).get("frame_shape", [256, 256])[:2])
        if native != tuple(dataset.frame_size):
            if not cfg.get("size_from_user"):
                raise UserError(f"{dataset.root}/train: frames are {dataset.frame_size[0]}x{dataset.frame_size[1]} "
                                f"but the model config is for {native[0]}x{native[1]}; pass --size "
                                f"{dataset.frame_size[0]} to train at the data's size, or a matching --config")
            # FOMM is fully convolutional: the user's --size sets the frame shape the config records
            self.model_config = copy.deepcopy(self.model_config)
            self.model_config.setdefault("dataset_params", {})["frame_shape"] = [*dataset.frame_size, 3]
        torch.manual_seed(seed)
        self.kp_detector, self.generator = build_networks(self.model_config, align_corners=tcfg["align_corners"])
        common = self.model_config["model_params"]["common_params"]
        self.disc = None
        if dcfg["kind"] == "fomm":
            dp = dict(self.model_config["model_params"]["discriminator_params"])
            dp.update(use_kp=dcfg["use_kp"], sn=dcfg["sn"])
            self.disc = MultiScaleDiscriminator(**dp, num_kp=common["num_kp"], num_channels=common["num_channels"])
        elif dcfg["kind"] == "unet":
            self.disc = UNetDiscriminator(num_channels=common["num_channels"], ch=dcfg["ch"], use_kp=dcfg["use_kp"],
                                          sn=dcfg["sn"], num_kp=common["num_kp"])
        modules = [self.kp_detector, self.generator] + ([self.disc] if self.disc is not None else [])
        for m in modules:
            m.to(self.device).train()
            if channels_last:
                m.to(memory_format=torch.channels_last)
        self.vgg = load_vgg19(cfg["vgg_weights"], seed=seed).to(self.device) \
            if sum(tcfg["loss_weights"]["perceptual"]) else None
        self.pyramid = ImagePyramid(tcfg["scales"], common["num_channels"]).to(self.device)

        betas = tuple(tcfg["betas"])
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=tcfg["lr_generator"], betas=betas)
        self.opt_kp = torch.optim.Adam(self.kp_detector.parameters(), lr=tcfg["lr_kp_detector"], betas=betas)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=tcfg["lr_discriminator"], betas=betas) \
            if self.disc is not None else None
        self.schedulers = [torch.optim.lr_scheduler.MultiStepLR(o, tcfg["milestones"], gamma=0.1)
                           for o in (self.opt_g, self.opt_kp, self.opt_d) if o is not None]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)

        self.pairs = FramePairs(dataset, num_repeats=dsc["num_repeats"], id_sampling=dsc["id_sampling"], seed=seed,
                                hflip=dsc.get("hflip", False), time_flip=dsc.get("time_flip", False))
        self.batch_size = tcfg["batch_size"]
        self.steps_per_epoch = len(self.pairs) // (self.batch_size * world_size)
        if self.steps_per_epoch == 0:
            raise UserError(f"{len(self.pairs)} training items are fewer than one batch of {self.batch_size} x "
                            f"{world_size} processes; lower --batch-size or raise num_repeats")
        self.step = 0
        from animbench.train.steps import DiscriminatorStep, GeneratorStep, wrap_ddp

        self.g_step = GeneratorStep(self)
        self.d_step = DiscriminatorStep(self) if self.disc is not None else None
        if world_size > 1:  # DistributedDataParallel: bucketed all-reduce overlapping the backward pass
            self.g_step = wrap_ddp(self.g_step, self.device)
            self.d_step = wrap_ddp(self.d_step, self.device) if self.d_step is not None else None

    # ------------------------------------------------------------------------------------------- data
    def batch(self, step: int) -> Dict[str, torch.Tensor]:
        epoch, within = divmod(step, self.steps_per_epoch)
        order = torch.randperm(len(self.pairs), generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
        start = (within * self.world_size + self.rank) * self.batch_size
        self.pairs.set_epoch(epoch)
        items = [self.pairs[int(i)] for i in order[start:start + self.batch_size]]
        return {k: torch.stack([it[k] for it in items]).to(self.device) for k in ("source", "driving")}

    # ------------------------------------------------------------------------------------------- one step
    def train_step(self, step: int) -> Dict[str, float]:
        from animbench.train.transforms import RandomTPS

        tcfg = self.cfg["train"]
        g = _step_generator(self.seed, step, self.rank)
        x = self.batch(step)
        epoch = step / self.steps_per_epoch
        autocast = torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None)

        transform = RandomTPS(x["driving"].shape[0], generator=g, device=self.device, **tcfg["transform"])
        self._discriminator_trainable(False)  # the generator step must not touch (or all-reduce) D's gradients
        try:
            with autocast:
                terms, gen, kp_d = self.g_step(x, transform)
            total_g = sum(terms.values())
            self._check_finite(total_g, terms, step)
            self.opt_g.zero_grad(set_to_none=True)
            self.opt_kp.zero_grad(set_to_none=True)
            self.scaler.scale(total_g).backward()
        finally:
            self._discriminator_trainable(True)
        self.scaler.step(self.opt_g)
        self.scaler.step(self.opt_kp)

        values = {k: float(v.detach()) for k, v in terms.items()}
        if self.disc is not None:
            with autocast:
                d_terms = self.d_step(x, gen, kp_d, g, epoch)
            total_d = sum(d_terms.values())
            self._check_finite(total_d, d_terms, step)
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler.scale(total_d).backward()
            self.scaler.step(self.opt_d)
            values.update({k: float(v.detach()) for k, v in d_terms.items()})
        self.scaler.update()
        self._sync_buffers()
        self._last = {"x": x, "gen": gen}
        return values

    def _disc(self, image, kp):
        kp = {k: v.detach() for k, v in kp.items()}
        out = self.disc(image, kp) if self.cfg["discriminator"]["kind"] == "unet" else \
            self.disc({"prediction_1": image}, kp)
        if self.cfg["discriminator"]["kind"] == "fomm":
            out = {"feature_maps": out["feature_maps_1"], "enc_logits": out["prediction_map_1"]}
        return out

    def _disc_losses(self, x, gen, kp_d, g, epoch) -> Dict[str, torch.Tensor]:
        from animbench.train import augment, losses

        dcfg, acfg = self.cfg["discriminator"], self.cfg["augmentation"]
        kind, w = dcfg["gan_loss"], self.cfg["train"]["loss_weights"]["discriminator_gan"]
        real, fake = x["driving"], gen["prediction"].detach()
        d_real, d_fake = self._disc(real, kp_d), self._disc(fake, kp_d)
        loss = losses.gan_target_loss(d_real["enc_logits"], 1.0, kind) + losses.gan_target_loss(d_fake["enc_logits"], 0.0, kind)
        if "dec_logits" in d_real:
            loss = loss + losses.gan_target_loss(d_real["dec_logits"], 1.0, kind) \
                + losses.gan_target_loss(d_fake["dec_logits"], 0.0, kind)
        out = {"disc_gan": w * loss}
        p = augment.augmentation_probability(epoch, acfg["warmup_epochs"], acfg["p_max"])
        if acfg["kind"] and float(torch.rand(1, generator=g)) < p:
            real_mask = self._real_mask(gen, real.shape, g)
            mixed = augment.mix(real, fake, real_mask)
            d_mix = self._disc(mixed, kp_d)
            out["disc_mix"] = w * (losses.gan_target_loss(d_mix["enc_logits"], 0.0, kind)      # encoder: fake
                                   + losses.gan_target_loss(d_mix["dec_logits"], real_mask, kind))  # per pixel
            out["consistency"] = acfg["consistency_weight"] * losses.consistency_loss(
                d_mix["dec_logits"], d_real["dec_logits"], d_fake["dec_logits"], real_mask)
        return out

    def _real_mask(self, gen, shape, g) -> torch.Tensor:
        from animbench.train import augment

        acfg = self.cfg["augmentation"]
        b, _, h, w = shape
        if acfg["kind"] == "cutmix":
            return augment.rectangular_real_mask(b, (h, w), g, device=self.device)
        n = b if acfg["per_sample"] else 1
        k = torch.randint(acfg["k_min"], acfg["k_max"] + 1, (n,), generator=g).float().expand(b)
        return augment.prioritycut_real_mask(gen["occlusion_map"].float(), gen["mask"][:, :1].float(), k,
                                             direction=acfg["direction"], threshold=acfg["threshold"],
                                             size=(h, w), base=acfg["base"]).to(self.device)

    # ------------------------------------------------------------------------------------------- helpers
    def _check_finite(self, total, terms, step):
        if not torch.isfinite(total):
            bad = [k for k, v in terms.items() if not torch.isfinite(v)]
            raise TrainingDiverged(f"loss {', '.join(bad) or 'total'} is not finite at step {step}; lower the "
                                   f"learning rate or train in fp32, and resume from the last checkpoint in "
                                   f"{self.out / 'checkpoints'}")

    def _modules(self):
        return [m for m in (self.kp_detector, self.generator, self.disc) if m is not None]

    def _discriminator_trainable(self, flag: bool) -> None:
        if self.disc is not None:
            for p in self.disc.parameters():
                p.requires_grad_(flag)

    def _sync_buffers(self):
        if self.world_size == 1:
            return
        import torch.distributed as dist

        for m in self._modules():
            for b in m.buffers():
                dist.broadcast(b, src=0)

    def broadcast_parameters(self):
        if self.world_size == 1:
            return
        import torch.distributed as dist

        for m in self._modules():
            for t in list(m.parameters()) + list(m.buffers()):
                dist.broadcast(t.data, src=0)

    # ------------------------------------------------------------------------------------------- checkpoints
    def state(self) -> dict:
        payload = {"generator": self.generator.state_dict(), "kp_detector": self.kp_detector.state_dict(),
                   "optimizer_generator": self.opt_g.state_dict(), "optimizer_kp_detector": self.opt_kp.state_dict(),
                   "epoch": self.step // self.steps_per_epoch}
        if self.disc is not None:
            payload["discriminator"] = self.disc.state_dict()
            payload["optimizer_discriminator"] = self.opt_d.state_dict()
        payload["animbench"] = {"variant": self.cfg["variant"], "config": self.cfg, "model_config": self.model_config,
                                "step": self.step, "seed": self.seed, "world_size": self.world_size,
                                "schedulers": [s.state_dict() for s in self.schedulers],
                                "scaler": self.scaler.state_dict(), "vgg_weights": self.cfg["vgg_weights"]}
        return payload

    def save(self, name: str) -> Path:
        buf = io.BytesIO()
        torch.save(self.state(), buf)
        path = self.out / "checkpoints" / name
        atomic_write_bytes(path, buf.getvalue())
        atomic_write_bytes(self.out / "checkpoints" / "last.pth.tar", buf.getvalue())
        return path

    def load(self, path: Path) -> None:
        try:
            payload = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as e:  # truncated/corrupt file: pickle, zip or EOF errors
            raise UserError(f"{path}: unreadable training checkpoint ({type(e).__name__}; truncated or corrupt); "
                            f"copy an earlier {path.parent}/NNNNNNNN-checkpoint.pth.tar over it to resume from "
                            f"there, or start a new --out") from None
        info = payload.get("animbench", {}) if isinstance(payload, dict) else {}
        if info.get("variant") != self.cfg["variant"]:
            raise UserError(f"{path}: a {info.get('variant')!r} checkpoint, not {self.cfg['variant']!r}; resume "
                            f"with the same variant")
        self.generator.load_state_dict(payload["generator"])
        self.kp_detector.load_state_dict(payload["kp_detector"])
        self.opt_g.load_state_dict(payload["optimizer_generator"])
        self.opt_kp.load_state_dict(payload["optimizer_kp_detector"])
        if self.disc is not None:
            self.disc.load_state_dict(payload["discriminator"])
            self.opt_d.load_state_dict(payload["optimizer_discriminator"])
        for s, st in zip(self.schedulers, info["schedulers"]):
            s.load_state_dict(st)
        self.scaler.load_state_dict(info["scaler"])
        self.step = int(info["step"])

    # ------------------------------------------------------------------------------------------- loop
    def fit(self, max_steps: Optional[int] = None) -> Dict[str, float]:
        from tqdm.auto import tqdm

        tcfg = self.cfg["train"]
        total = self.steps_per_epoch * tcfg["epochs"] if max_steps is None else max_steps
        log = self.out / "losses.jsonl"
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            if log.exists():  # drop entries past the resume point (and a torn last line) so the log matches
                kept = [json.dumps(r) for r in read_log(log) if r.get("step", -1) < self.step]
                atomic_write_bytes(log, ("\n".join(kept) + "\n" if kept else "").encode())
        bar = tqdm(total=total, initial=self.step, disable=not self.progress, desc=f"train {self.cfg['variant']}",
                   **progress_options())
        try:
            values = self._loop(total, log, bar)
        finally:
            bar.close()  # before any error line
        if self.rank == 0:
            self.save("final.pth.tar")
            self.write_samples()
            self._write_csv(log)
        return values

    def _loop(self, total: int, log: Path, bar) -> Dict[str, float]:
        tcfg = self.cfg["train"]
        values: Dict[str, float] = {}
        ckpt_steps = tcfg.get("checkpoint_every_steps") or self.steps_per_epoch * tcfg["checkpoint_every_epochs"]
        while self.step < total:
            started = time.perf_counter()
            values = self.train_step(self.step)
            self.step += 1
            if self.step % self.steps_per_epoch == 0:
                for s in self.schedulers:
                    s.step()
            if self.rank == 0:
                with open(log, "a") as f:
                    f.write(json.dumps({"step": self.step - 1, "epoch": (self.step - 1) // self.steps_per_epoch,
                                        "seconds": round(time.perf_counter() - started, 4), **values}) + "\n")
                if self.step % ckpt_steps == 0:
                    self.save(f"{self.step:08d}-checkpoint.pth.tar")
                if tcfg.get("sample_every_steps") and self.step % tcfg["sample_every_steps"] == 0:
                    self.write_samples()
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(values.items())[:3]}, refresh=False)
        return values

    def _write_csv(self, log: Path) -> None:
        import pandas as pd

        rows = read_log(log)
        if rows:
            atomic_write_bytes(self.out / "losses.csv", pd.DataFrame(rows).to_csv(index=False).encode())

    def write_samples(self) -> Optional[Path]:
        """A PNG grid: source | driving | prediction | occlusion | PriorityCut mask (k=30) | augmented."""
        import imageio.v3 as iio

        from animbench.data.convert import to_uint8_truncate
        from animbench.train.augment import mix, prioritycut_real_mask

        last = getattr(self, "_last", None)
        if last is None:
            return None
        x, gen = last["x"], last["gen"]
        h, w = x["driving"].shape[2:]
        with torch.no_grad():
            occ = torch.nn.functional.interpolate(gen["occlusion_map"].float(), size=(h, w), mode="bilinear",
                                                  align_corners=False)
            real_mask = prioritycut_real_mask(gen["occlusion_map"].float(), gen["mask"][:, :1].float(), 30,
                                              direction=self.cfg["augmentation"]["direction"], size=(h, w))
            augmented = mix(x["driving"], gen["prediction"].float(), real_mask)
            cols = [x["source"], x["driving"], gen["prediction"].float(), occ.expand(-1, 3, -1, -1),
                    (1 - real_mask).expand(-1, 3, -1, -1), augmented]
            rows = [[to_uint8_truncate(c[i:i + 1].cpu())[0] for c in cols] for i in range(min(4, x["source"].shape[0]))]
        buf = io.BytesIO()
        iio.imwrite(buf, titled_grid(rows, SAMPLE_COLUMNS), extension=".png")
        path = self.out / "samples" / f"step-{self.step:08d}.png"
        atomic_write_bytes(path, buf.getvalue())
        return path
