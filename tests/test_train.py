"""Trainer: every variant steps, overfitting, PriorityCut mixing by hand, consistency, warm-up, TPS, resume,
checkpoint round trip, 2-process data parallelism, demo."""
import json
import math

import numpy as np
import pytest
import torch

from animbench.errors import UserError
from animbench.train import train
from animbench.train.augment import augmentation_probability, mix, prioritycut_real_mask, rectangular_real_mask
from animbench.train.config import load_train_config
from animbench.train.losses import consistency_loss
from animbench.train.trainer import Trainer
from animbench.train.transforms import RandomTPS


@pytest.mark.parametrize("variant", ["fomm", "fomm-adv", "unet", "cutmix", "prioritycut"])
def test_every_variant_trains_with_finite_losses(tmp_path, variant):
    values = train(variant, tmp_path / variant, config="tiny", max_steps=2, progress=False,
                   overrides={"augmentation": {"warmup_epochs": 0, "p_max": 1.0}})
    assert values and all(math.isfinite(v) for v in values.values())
    expected = {"fomm": set(), "fomm-adv": {"disc_gan"}, "unet": {"disc_gan"},
                "cutmix": {"disc_mix", "consistency"}, "prioritycut": {"disc_mix", "consistency"}}[variant]
    assert expected <= set(values)
    payload = torch.load(tmp_path / variant / "checkpoints" / "final.pth.tar", weights_only=True)
    assert {"generator", "kp_detector", "optimizer_generator", "epoch", "animbench"} <= set(payload)
    assert ("discriminator" in payload) == (variant != "fomm")
    import imageio.v3 as iio

    grid = iio.imread(sorted((tmp_path / variant / "samples").glob("*.png"))[-1])
    assert grid.shape[1] == 6 * 64 and (grid.shape[0] - 18) % 64 == 0  # column titles above rows of 64² images
    assert grid[:18].min() < 128 and grid[:18].max() == 255  # dark title text on a white band


def test_overfits_a_fixed_batch(tmp_path):
    cfg = load_train_config("fomm", "tiny")
    trainer = Trainer(cfg, tmp_path, progress=False)
    fixed = trainer.batch(0)
    trainer.batch = lambda step: fixed
    first = [sum(trainer.train_step(s).values()) for s in range(3)]
    for s in range(3, 45):
        last = trainer.train_step(s)
    assert sum(last.values()) < 0.7 * np.mean(first), (first, last)


def test_prioritycut_mixing_on_hand_made_maps():
    occ = torch.tensor([[0.9, 0.1, 0.5, 0.2], [0.8, 0.3, 0.05, 0.7]]).view(1, 1, 2, 4)
    bg = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.9, 0.0]]).view(1, 1, 2, 4)  # (1,2) is background
    real, fake = torch.ones(1, 3, 2, 4), torch.zeros(1, 3, 2, 4)
    # 7 foreground pixels, k=30 -> floor(2.1 + 0.5) = 2 most occluded: 0.1 (0,1) and 0.2 (0,3); the 0.05
    # pixel is background and never selected
    prose = mix(real, fake, prioritycut_real_mask(occ, bg, 30, direction="prose"))
    assert prose[0, 0].tolist() == [[1, 0, 1, 0], [1, 1, 1, 1]]      # fake pixels where motion changes most
    equation = mix(real, fake, prioritycut_real_mask(occ, bg, 30, direction="equation"))
    assert equation[0, 0].tolist() == [[0, 1, 0, 1], [0, 0, 0, 0]]   # Eq. 3 read literally: real pixels there


def test_rectangular_cutmix_mask_is_a_box_and_seeded():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = rectangular_real_mask(4, (16, 16), g1), rectangular_real_mask(4, (16, 16), g2)
    assert torch.equal(a, b) and a.shape == (4, 1, 16, 16)
    for m in a[:, 0]:
        fake = (m == 0).nonzero()
        if len(fake):
            rows, cols = fake[:, 0], fake[:, 1]
            box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            assert box == len(fake)  # the fake region is exactly one rectangle


def test_consistency_loss_against_direct_computation():
    g = torch.Generator().manual_seed(0)
    dm, dr, df = (torch.randn(2, 1, 3, 3, generator=g) for _ in range(3))
    m = (torch.rand(2, 1, 3, 3, generator=g) > 0.5).float()
    direct = sum(float((dm[b, 0, i, j] - (dr[b, 0, i, j] if m[b, 0, i, j] else df[b, 0, i, j])) ** 2)
                 for b in range(2) for i in range(3) for j in range(3)) / 18
    assert consistency_loss(dm, dr, df, m).item() == pytest.approx(direct, rel=1e-6)


def test_augmentation_warmup_schedule():
    assert [augmentation_probability(e, 4) for e in (0, 1, 2, 4, 10)] == [0.0, 0.125, 0.25, 0.5, 0.5]
    assert augmentation_probability(3, 0) == 0.5


def test_tps_identity_and_l1_radial_distance():
    t = RandomTPS(1, sigma_affine=0.0, sigma_tps=0.0, points_tps=5)
    z = torch.rand(1, 7, 2) * 2 - 1
    assert torch.equal(t.warp_coordinates(z), z)
    t.control_params = torch.zeros(1, 1, 25)
    t.control_params[0, 0, 12] = 1.0  # the centre control point (0, 0) only
    point = torch.tensor([[[0.3, -0.4]]])
    r = 0.3 + 0.4  # L1 distance, not Euclidean (0.5)
    s = r ** 2 * math.log(r + 1e-6)
    assert t.warp_coordinates(point)[0, 0].tolist() == pytest.approx([0.3 + s, -0.4 + s], abs=1e-6)
    jac = t.jacobian(point)
    assert jac.shape == (1, 1, 2, 2)


def test_vgg_keys_match_torchvision_layout():
    from animbench.train.vgg import load_vgg19

    keys = set(load_vgg19("random").state_dict())
    convs = {0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34}
    assert keys == {f"features.{i}.{p}" for i in convs for p in ("weight", "bias")}
    with pytest.raises(UserError, match="--vgg-weights"):
        load_vgg19("/nonexistent/vgg.pth")


def test_unet_discriminator_shapes():
    from animbench.train.unet_discriminator import UNetDiscriminator

    d = UNetDiscriminator(ch=64)
    out = d(torch.rand(1, 3, 256, 256))
    assert [tuple(f.shape[1:]) for f in out["feature_maps"]] == [(64, 126, 126), (128, 61, 61), (256, 29, 29),
                                                                  (512, 26, 26)]
    assert out["enc_logits"].shape == (1, 1, 26, 26) and out["dec_logits"].shape == (1, 1, 256, 256)


def test_resume_continues_exactly(tmp_path):
    over = {"augmentation": {"warmup_epochs": 0, "p_max": 1.0}}
    train("prioritycut", tmp_path / "full", config="tiny", max_steps=4, progress=False, overrides=over)
    train("prioritycut", tmp_path / "split", config="tiny", max_steps=2, progress=False, overrides=over)
    with pytest.raises(UserError, match="--resume"):
        train("prioritycut", tmp_path / "split", config="tiny", max_steps=4, progress=False, overrides=over)
    train("prioritycut", tmp_path / "split", config="tiny", max_steps=4, progress=False, overrides=over, resume=True)
    logs = [[json.loads(l) for l in (tmp_path / d / "losses.jsonl").read_text().splitlines()] for d in ("full", "split")]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert strip(logs[0]) == strip(logs[1]) and len(logs[0]) == 4
    a = torch.load(tmp_path / "full" / "checkpoints" / "final.pth.tar", weights_only=True)
    b = torch.load(tmp_path / "split" / "checkpoints" / "final.pth.tar", weights_only=True)
    for part in ("generator", "kp_detector", "discriminator"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)


def test_checkpoint_loads_as_prioritycut_model(tmp_path):
    from animbench.data import open_dataset
    from animbench.data.convert import to_float_tensor
    from animbench.models import load_model

    cfg = load_train_config("prioritycut", "tiny")
    trainer = Trainer(cfg, tmp_path, progress=False)
    trainer.train_step(0)
    trainer.step = 1
    path = trainer.save("x.pth.tar")
    model = load_model("prioritycut", checkpoint=path)
    frames = to_float_tensor(open_dataset("sample", split="test", frame_size=(64, 64)).videos[0].read_all()[:3])
    trainer.generator.eval(); trainer.kp_detector.eval()
    with torch.no_grad():
        kp_source = {k: v.expand(3, *v.shape[1:]) for k, v in trainer.kp_detector(frames[:1]).items()}
        expected = trainer.generator(frames[:1].expand(3, -1, -1, -1), kp_driving=trainer.kp_detector(frames),
                                     kp_source=kp_source)
        got = model(frames[:1], frames)
    assert (got["prediction"] - expected["prediction"]).abs().max() < 1e-5
    assert model.native_size == (64, 64)


def _ddp_worker(rank, world, out, port, queue):
    import os

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    import torch.distributed as dist

    from animbench.train.trainer import Trainer as T

    dist.init_process_group("gloo")
    trainer = T(load_train_config("unet", "tiny"), out, rank=rank, world_size=world, progress=False)
    trainer.broadcast_parameters()
    for step in range(2):
        trainer.train_step(step)
    flat = torch.cat([p.detach().flatten() for m in trainer._modules() for p in m.parameters()])
    bufs = torch.cat([b.detach().float().flatten() for m in trainer._modules() for b in m.buffers()])
    queue.put((rank, flat.numpy(), bufs.numpy()))
    dist.barrier()
    dist.destroy_process_group()


def test_two_process_gloo_ranks_end_identical(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, str(tmp_path), port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict((r, (w, b)) for r, w, b in (queue.get() for _ in range(2)))
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    # and the ranks trained: parameters moved away from the shared initialisation
    fresh = Trainer(load_train_config("unet", "tiny"), tmp_path / "x", progress=False)
    init = torch.cat([p.detach().flatten() for m in fresh._modules() for p in m.parameters()]).numpy()
    assert not np.array_equal(init, results[0][0])


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    from animbench.demo import run_demo

    report = run_demo(tmp_path / "demo", steps=4)
    text = report.read_text()
    assert "| Copy source |" in text and "PriorityCut (demo)" in text and "top-k" in text
    assert (tmp_path / "demo" / "plots" / "qualitative.png").exists()


def test_nan_guard_stops_with_a_clear_message(tmp_path, monkeypatch):
    import subprocess
    import sys

    from animbench.train import losses
    from animbench.train.trainer import TrainingDiverged

    monkeypatch.setattr(losses, "perceptual_loss", lambda *a, **k: torch.tensor(float("nan")))
    with pytest.raises(TrainingDiverged, match="perceptual is not finite at step 0"):
        train("fomm", tmp_path / "nan", config="tiny", max_steps=2, progress=False)
    r = subprocess.run([sys.executable, "-m", "animbench", "train", "prioritycut", "--dataset", "sample",
                        "--out", str(tmp_path / "cli"), "--resume", "--max-steps", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--resume: no checkpoint" in r.stderr and "Traceback" not in r.stderr
