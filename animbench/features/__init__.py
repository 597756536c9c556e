"""pose-evaluation feature tables (AKD / MKR / AED): safe pickle I/O and the comparison arithmetic."""
from animbench.features.compare import (KINDS, ComparisonResult, compare, compare_body_pose, compare_embeddings,
                                        compare_face_pose, compare_result, count_missing)
from animbench.features.pickles import read_features, validate_features, write_features

__all__ = ["KINDS", "ComparisonResult", "compare", "compare_body_pose", "compare_embeddings", "compare_face_pose",
           "compare_result", "count_missing", "read_features", "validate_features", "write_features"]
