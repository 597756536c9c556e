"""`animbench features extract|compare` (drop-ins for pose-evaluation's extract.py and cmp scripts) and
`animbench weights list|download|verify|path` (third-party weight files)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from animbench.errors import UserError

KIND_CHOICES = ["face-pose", "face-id", "body-pose", "body-id", "face_pose", "face_id", "body_pose", "body_id"]


def _parse_shape(value):
    if value is None:
        return None
    try:
        parts = tuple(int(v) for v in str(value).replace("x", ",").split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: use H,W e.g. 256,256") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise click.BadParameter(f"{value!r}: use H,W e.g. 256,256")
    return parts


@click.group()
def features():
    """Per-frame features for AKD / MKR / AED, as AliaksandrSiarohin/pose-evaluation computes them."""


@features.command("extract")
@click.argument("in_dir", type=click.Path(path_type=Path))
@click.argument("out_pkl", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", required=True, type=click.Choice(KIND_CHOICES),
              help="face-pose (68 landmarks), face-id (OpenFace), body-pose (OpenPose 18), body-id (re-id).")
@click.option("--weights", type=click.Path(path_type=Path), default=None,
              help="Weight file of the extractor (default: the cached file; see `animbench weights list`).")
@click.option("--image-shape", default=None,
              help="H,W of one frame: splits PNG strips and cuts stacked images (default: square frames).")
@click.option("--column", default=0, show_default=True, type=click.IntRange(min=0),
              help="With --image-shape: which W-wide column of stacked images to read (extract.py's --column).")
@click.option("--resize", type=click.Choice(["skimage-0.14", "modern"]), default="skimage-0.14", show_default=True,
              help="face-id: the 96x96 resize of the published numbers (skimage 0.14) or today's skimage.")
@click.option("--bn-mode", type=click.Choice(["parity", "eval"]), default="parity", show_default=True,
              help="body-id: BatchNorm as pose-evaluation ran it (per-frame batch statistics) or eval mode "
                   "(running statistics, as a re-id network is meant to run).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N.")
def features_extract(in_dir, out_pkl, kind, weights, image_shape, column, resize, bn_mode, device):
    """Write the pose-evaluation feature table (pickle) of every video in IN_DIR to OUT_PKL."""
    from animbench.features.extract import extract_folder
    from animbench.features.pickles import write_features
    from animbench.features.registry import load_extractor, normalise_kind
    from animbench.validation import check_output_dir, parse_device

    kind = normalise_kind(kind)
    device = parse_device(device)
    if not in_dir.is_dir():
        raise UserError(f"{in_dir}: no such directory; pass a folder of videos (frame folders, strips, mp4/gif)")
    check_output_dir(out_pkl.parent, option="OUT_PKL")
    options = {"face-id": {"resize": resize}, "body-id": {"bn_mode": bn_mode}}.get(kind, {})
    from animbench.cli import _weights_path

    weights = _weights_path(kind, weights, "--weights") if weights is not None else None
    extractor = load_extractor(kind, weights=weights, device=device, **options)
    table = extract_folder(in_dir, extractor, image_shape=_parse_shape(image_shape), column=column)
    write_features(table, out_pkl)
    missing = sum(v is None for v in table["value"])
    click.echo(f"wrote {out_pkl}: {table['file_name'].nunique()} videos, {len(table)} frames"
               f"{f', {missing} without a detection' if missing else ''}")


@features.command("compare")
@click.argument("gt_pkl", type=click.Path(path_type=Path))
@click.argument("gen_pkl", type=click.Path(path_type=Path))
@click.option("--kind", required=True, type=click.Choice(KIND_CHOICES),
              help="face-pose (cmp_kp.py), body-pose (cmp_with_missing.py), face-id / body-id (cmp.py).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (akd/mkr/aed and frame counts).")
@click.option("--per-video", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the per-video values as CSV here.")
@click.option("--trust-pickle", is_flag=True, help="Read pickles with pandas.read_pickle (can run code).")
def features_compare(gt_pkl, gen_pkl, kind, as_json, per_video, trust_pickle):
    """Score GEN_PKL against GT_PKL exactly as pose-evaluation's cmp scripts print it, plus what they hide."""
    from animbench.features.compare import compare_result
    from animbench.features.pickles import read_features
    from animbench.validation import optional_file

    gt = read_features(optional_file(gt_pkl, "GT_PKL"), trust=trust_pickle)
    gen = read_features(optional_file(gen_pkl, "GEN_PKL"), trust=trust_pickle)
    result = compare_result(gt, gen, kind, gt_label=str(gt_pkl), gen_label=str(gen_pkl))
    numbers = result.to_dict()
    if per_video is not None:
        from animbench.results.store import atomic_write_bytes

        atomic_write_bytes(per_video, result.videos.to_csv(index=False).encode())
    if as_json:
        click.echo(json.dumps(numbers))
        return
    for key in ("akd", "mkr", "aed"):
        if key in numbers:
            value = numbers[key]
            click.echo(f"{key.upper()}: {'nan (no frame scored)' if value is None else f'{value:.6g}'}")
    click.echo(f"frames scored: {numbers['frames_scored']}, skipped (no generated detection): "
               f"{numbers['frames_missing_generated']}, skipped (no ground-truth detection): "
               f"{numbers['frames_missing_gt']}")


@click.group()
def weights():
    """Third-party weight files of the feature extractors (and VGG-19): list, download, verify, install."""


def _echo_lines(lines):
    for line in lines:
        click.echo(line)


@weights.command("list")
def weights_list():
    """Every weight file animbench uses: present or not, file, user, checksum, where it lives, its source."""
    from animbench.weights import cmd_list

    _echo_lines(cmd_list())


@weights.command("download")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Download again even if the file is there.")
def weights_download(names, force):
    """Download NAMES (default: every file with a direct link) into the cache, checksum-verified when known."""
    from animbench.weights import cmd_download

    _echo_lines(cmd_download(list(names) or "all", force=force))


@weights.command("verify")
@click.argument("names", nargs=-1)
def weights_verify(names):
    """Check size / sha256 of the cached files (exit 1 if a named or present file fails)."""
    import sys

    from animbench.weights import cmd_verify

    lines, ok = cmd_verify(list(names) or "all")
    _echo_lines(lines)
    if not ok:
        sys.exit(1)


@weights.command("path")
@click.argument("names", nargs=-1)
def weights_path(names):
    """Where each file is expected (put your own copy there, or use `install`)."""
    from animbench.weights import cmd_path

    _echo_lines(cmd_path(list(names) or "all"))


@weights.command("install")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a file already in place.")
def weights_install(name, file, force):
    """Copy a weight FILE you downloaded by hand to where animbench (and face-alignment) look for NAME."""
    from animbench.validation import optional_file
    from animbench.weights import cmd_install

    _echo_lines(cmd_install(name, optional_file(file, "FILE"), force=force))
