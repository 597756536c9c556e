"""Shared test fixtures: a tiny FOMM (config + checkpoint in the released layout) built from the parity fixture."""
from pathlib import Path

import pytest
import torch
import yaml

FOMM_FIXTURE = Path(__file__).parent / "data" / "fomm" / "tiny_parity.pt"


def write_tiny_fomm(directory: Path):
    """(config.yaml, checkpoint.pth.tar) of the reduced FOMM whose outputs the parity fixture holds."""
    fixture = torch.load(FOMM_FIXTURE, weights_only=True)
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "tiny.yaml"
    config.write_text(yaml.safe_dump(fixture["config"]))
    checkpoint = directory / "tiny-cpk.pth.tar"
    torch.save({"generator": fixture["state_dict"]["generator"],
                "kp_detector": fixture["state_dict"]["kp_detector"]}, checkpoint)
    return config, checkpoint


@pytest.fixture
def tiny_fomm(tmp_path):
    return write_tiny_fomm(tmp_path / "tiny-fomm")
