"""Third-party weight files: the manifest (sources, checksums, licences) and the local store (paths, download,
verify, install). See :mod:`animbench.weights.manifest` and :mod:`animbench.weights.store`."""
from animbench.weights.manifest import ENTRIES, FACE_POSE_WEIGHTS, MANIFEST, WeightFile, get, names
from animbench.weights.store import (VerifyResult, check_file, cmd_download, cmd_install, cmd_list, cmd_path,
                                     cmd_verify, download, file_digests, how_to_get, install, list_rows, location_dir,
                                     path, resolve, torch_hub_checkpoints_dir, verify, weights_dir)

__all__ = ["ENTRIES", "FACE_POSE_WEIGHTS", "MANIFEST", "WeightFile", "get", "names", "VerifyResult", "check_file",
           "cmd_download", "cmd_install", "cmd_list", "cmd_path", "cmd_verify", "download", "file_digests",
           "how_to_get", "install", "list_rows", "location_dir", "path", "resolve", "torch_hub_checkpoints_dir",
           "verify", "weights_dir"]
