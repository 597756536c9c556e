"""Datasets (FOMM layout), video readers, the embedded sample dataset and test-set manifests."""
from animbench.data.convert import to_float_tensor, to_uint8_truncate
from animbench.data.datasets import DATASETS, Dataset, DatasetPreset, open_dataset
from animbench.data.manifest import dataset_manifest, manifest_hash
from animbench.data.video import Video, open_video

__all__ = ["DATASETS", "Dataset", "DatasetPreset", "Video", "dataset_manifest", "manifest_hash", "open_dataset",
           "open_video", "to_float_tensor", "to_uint8_truncate"]
