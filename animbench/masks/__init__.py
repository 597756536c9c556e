"""Masks shared by the trainer and the evaluator: PriorityCut / top-k masks and salient masks."""
from animbench.masks.prioritycut import DEFAULT_BG_THRESHOLD, foreground_occlusion, prioritycut_mask, topk_masks

__all__ = ["DEFAULT_BG_THRESHOLD", "foreground_occlusion", "prioritycut_mask", "topk_masks"]
