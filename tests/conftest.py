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


def call_cli(capsys, *args):
    """(exit code, stdout, stderr) of one in-process `animbench` call (the real entry point)."""
    from animbench.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return e.value.code, out, err


@pytest.fixture
def tiny_fomm(tmp_path):
    return write_tiny_fomm(tmp_path / "tiny-fomm")


@pytest.fixture(autouse=True)
def _one_thread_where_declared(request):
    """Modules with ONE_THREAD = True run each test on one torch thread (their reference outputs were made so;
    convolutions round differently with more threads), without changing the rest of the session."""
    if not getattr(request.module, "ONE_THREAD", False):
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
