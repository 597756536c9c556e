import pytest

from animbench.errors import UserError
from animbench.models import MODELS, load_model
from animbench.registry import Registry


def test_lazy_entry_and_did_you_mean():
    reg = Registry("thing")
    reg.register("alpha", "math:sqrt", help="lazy")
    assert reg.get("alpha")(9) == 3
    with pytest.raises(UserError, match=r"unknown thing 'alpah'; did you mean 'alpha'\?"):
        reg.get("alpah")
    with pytest.raises(ValueError):
        reg.register("alpha", "math:floor")


def test_model_registry_copy_source():
    import torch

    assert "copy-source" in MODELS
    model = load_model("copy-source")
    src = torch.rand(1, 3, 8, 8)
    drv = torch.rand(4, 3, 8, 8)
    out = model(src, drv)
    assert out["prediction"].shape == (4, 3, 8, 8)
    assert torch.equal(out["prediction"][2], src[0])
    with pytest.raises(UserError, match="did you mean 'fomm"):
        load_model("fom")
    with pytest.raises(UserError, match="no --checkpoint"):
        load_model("copy-source", checkpoint="x.pth")
