"""First Order Motion Model (Siarohin et al., 2019) with the official state_dict layout."""
from animbench.models.fomm.checkpoint import load_fomm, load_fomm_adv
from animbench.models.fomm.model import BUNDLED_CONFIGS, FOMMModel, build_networks, load_config, normalize_kp

__all__ = ["BUNDLED_CONFIGS", "FOMMModel", "build_networks", "load_config", "load_fomm", "load_fomm_adv",
           "normalize_kp"]
