"""`animbench data check`: validate a dataset folder and list every problem found (not just the first)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from animbench.errors import UserError


@dataclass
class CheckReport:
    root: Path
    problems: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    manifest: Dict[str, Optional[dict]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_dataset(root, frame_size: Tuple[int, int] = (256, 256),
                  splits: Sequence[str] = ("train", "test"), required: Sequence[str] = ("test",)) -> CheckReport:
    """Every problem of the splits in `splits`; a split not in `required` may be absent (eval-only data)."""
    from animbench.data.datasets import _is_video_entry
    from animbench.data.manifest import video_entry, videos_hash
    from animbench.data.video import open_video

    root = Path(root)
    report = CheckReport(root)
    for split in splits:
        split_dir = root / split
        if not split_dir.is_dir():
            if split in required:
                report.problems.append(f"{split_dir}: missing split folder")
            else:
                report.notes.append(f"{split_dir}: absent (fine for evaluation; pass --for-training to require it)")
            report.manifest[split] = None
            continue
        videos, frames = [], 0
        for entry in sorted(split_dir.iterdir(), key=lambda p: p.name):
            if entry.name.startswith("."):
                continue
            try:
                is_video = _is_video_entry(entry)
            except UserError as e:
                report.problems.append(str(e))
                continue
            if not is_video:
                report.problems.append(f"{entry}: not a video (folder of frames, png/jpg strip, or video file)")
                continue
            try:
                video = open_video(entry, frame_size)
                sizes = set()
                n = 0
                for chunk in video.iter_chunks(64):  # decodes every frame: finds corrupt and mis-sized ones
                    sizes.add(chunk.shape[1:3])
                    n += len(chunk)
                info = video_entry(video)
                videos.append(info)
                frames += n
            except UserError as e:
                report.problems.append(str(e))
        if not videos:
            report.problems.append(f"{split_dir}: no readable videos")
        report.manifest[split] = {"num_videos": len(videos), "num_frames": frames, "videos": videos,
                                  "hash": videos_hash(videos)}
    return report
