"""`animbench train` and `animbench demo` (registered on the main group by animbench.cli)."""
from __future__ import annotations

from pathlib import Path

import click

from animbench.errors import UserError


def _parse_size(value):
    from animbench.cli import _parse_size as parse

    return parse(value)


# ---------------------------------------------------------------------------------------------- train / demo
_TRAIN_CONFIG_FOR = {"vox": "prioritycut-vox", "taichi": "prioritycut-taichi", "bair": "prioritycut-bair",
                     "sample": "tiny"}


@click.command("train")
@click.argument("variant", type=click.Choice(["fomm", "fomm-adv", "unet", "cutmix", "prioritycut"]))
@click.option("--dataset", "-d", default=None, help="vox, taichi, bair or sample (picks the bundled config).")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Dataset root holding train/ (and test/); default: the preset's root.")
@click.option("--config", default=None, help="Bundled training config (prioritycut-vox, tiny, ...) or a YAML.")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs to train (default: the config's).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Stop after N optimisation steps (overrides --epochs).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Per-process batch size (the paper: 20).")
@click.option("--size", "--image-size", "image_size", default=None,
              help="Frame size, e.g. 64 or 256 (default: the config's; --image-size is an alias).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N (torchrun: cuda).")
@click.option("--amp", type=click.Choice(["bf16", "fp16"]), default=None, help="Mixed precision.")
@click.option("--channels-last", is_flag=True, help="channels_last memory format.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed of initialisation, batches and augmentation.")
@click.option("--vgg-weights", default=None, help="torchvision (download once), a local .pth, or random.")
def train_cmd(variant, dataset, data_root, config, out, epochs, max_steps, batch_size, image_size, device, amp,
              channels_last, resume, seed, vgg_weights):
    """Train PriorityCut or a rung of its ablation ladder (torchrun for several processes)."""
    from animbench.train import train
    from animbench.validation import check_output_dir, parse_device

    device = parse_device(device)
    check_output_dir(out)
    if data_root is not None and not data_root.is_dir():
        raise UserError(f"--data-root {data_root}: no such directory; pass a folder holding train/ and test/")
    if config is None:
        if dataset is None:
            raise UserError("pass --dataset (vox, taichi, bair, sample) or --config")
        config = _TRAIN_CONFIG_FOR.get(dataset)
        if config is None:
            raise UserError(f"--dataset {dataset}: no bundled training config; pass --config YAML")
    overrides = {"dataset": {}, "train": {}}
    if dataset is not None:
        overrides["dataset"]["name"] = dataset
    if data_root is not None:
        overrides["dataset"]["root"] = str(data_root)
    if image_size is not None:
        overrides["dataset"]["frame_size"] = list(_parse_size(image_size))
        overrides["size_from_user"] = True
    if epochs is not None:
        overrides["train"]["epochs"] = epochs
    if batch_size is not None:
        overrides["train"]["batch_size"] = batch_size
    if vgg_weights is not None:
        overrides["vgg_weights"] = vgg_weights
    values = train(variant, out, config=config, overrides=overrides, device=device, seed=seed, amp=amp,
                   channels_last=channels_last, max_steps=max_steps, resume=resume)
    import os

    if os.environ.get("RANK", "0") == "0":
        click.echo(f"trained {variant} into {out}; last losses: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))


@click.command("demo")
@click.option("--out", "-o", default="demo-out", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the demo's training runs, evaluations, report.md and plots.")
@click.option("--steps", default=150, show_default=True, type=click.IntRange(min=1), help="Training steps per model.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of training and CIs.")
def demo_cmd(out, steps, seed):
    """Train small FOMM and PriorityCut models on the sample dataset, evaluate, and write a report."""
    from animbench.demo import run_demo
    from animbench.validation import check_output_dir

    check_output_dir(out)

    run_demo(out, steps=steps, seed=seed)
