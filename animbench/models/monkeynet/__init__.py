"""Monkey-Net (Siarohin et al., CVPR 2019) with the official state_dict layout."""
from animbench.models.monkeynet.checkpoint import load_monkeynet
from animbench.models.monkeynet.model import (BUNDLED_CONFIGS, MonkeyNetModel, SourceState, build_networks,
                                              load_config)

__all__ = ["BUNDLED_CONFIGS", "MonkeyNetModel", "SourceState", "build_networks", "load_config", "load_monkeynet"]
