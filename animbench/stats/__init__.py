"""Bootstrap confidence intervals (frame or video unit, percentile or BCa, paired differences)."""
from animbench.stats.bootstrap import CIResult, PairedResult, bootstrap_ci, paired_difference

__all__ = ["CIResult", "PairedResult", "bootstrap_ci", "paired_difference"]
