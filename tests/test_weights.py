"""Third-party weights layer: manifest, cache paths, resolve / install / verify / download (pooch, no network)."""
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pooch
import pytest
import torch

from animbench import weights
from animbench.errors import UserError
from animbench.weights import WeightFile, store

DATA = b"animbench test weights\n" * 100


@pytest.fixture(autouse=True)
def dirs(tmp_path, monkeypatch):
    """animbench cache and torch home in tmp; torch.hub.set_dir unset; pooch must not be reached by accident."""
    monkeypatch.setenv("ANIMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def no_network(*args, **kwargs):
        raise AssertionError("pooch.retrieve must not be called here")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    return {"cache": tmp_path / "cache" / "weights", "hub": tmp_path / "torch" / "hub" / "checkpoints",
            "tmp": tmp_path}


def local_file(tmp_path, data=DATA, name="supplied.bin"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def entry(**kw):
    base = dict(name="test-w", filename="test-w.pth", urls=("https://example.invalid/test-w.pth",),
                used_by="tests", license="none")
    base.update(kw)
    return WeightFile(**base)


# ---------------------------------------------------------------------------------------------------------
def test_manifest_entries():
    assert set(weights.names()) == {"fan-2d", "s3fd", "openface", "openpose-coco", "reid-market1501", "vgg19"}
    for e in weights.ENTRIES:
        assert all(u.startswith("https://") for u in e.urls) and e.license and e.used_by
        assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", e.sha256)
        if e.sha256_prefix:   # torch-hub naming convention: name-<sha256 prefix>.ext
            assert torch.hub.HASH_REGEX.search(e.filename).group(1) == e.sha256_prefix
    assert not weights.get("openpose-coco").direct_download and not weights.get("reid-market1501").direct_download
    assert "yadi.sk" in weights.get("openpose-coco").urls[0]
    assert weights.get("vgg19").prefix_enforced and not weights.get("fan-2d").prefix_enforced
    assert "d00221832413e86b5608ca791c956b7949479627" in weights.get("openface").urls[0]
    with pytest.raises(UserError, match="unknown weights name 'nope'"):
        weights.get("nope")


def test_manifest_matches_face_alignment_and_vgg():
    """face-alignment's files under the exact names and URLs the installed package downloads."""
    import face_alignment.api
    from face_alignment.detection.sfd import sfd_detector

    assert weights.get("fan-2d").urls[0] == face_alignment.api.models_urls["2DFAN-4"]
    assert weights.get("s3fd").urls[0] == sfd_detector.models_urls["s3fd"]
    assert os.path.basename(face_alignment.api.models_urls["2DFAN-4"]) == weights.get("fan-2d").filename
    from animbench.train.vgg import VGG19_URL

    assert weights.get("vgg19").urls[0] == VGG19_URL


def test_paths(dirs):
    assert weights.weights_dir() == dirs["cache"]
    assert weights.torch_hub_checkpoints_dir() == dirs["hub"]
    assert weights.path("fan-2d") == dirs["hub"] / "2DFAN4-11f355bf06.pth.tar"
    assert weights.path("s3fd") == dirs["hub"] / "s3fd-619a316812.pth"
    assert weights.path("vgg19") == dirs["hub"] / "vgg19-dcbb9e9d.pth"
    assert weights.path("openface") == dirs["cache"] / "openface.pth"
    assert weights.path("openpose-coco") == dirs["cache"] / "pose_model.pth"
    assert weights.cmd_path(["reid-market1501"]) == [str(dirs["cache"] / "reid_model.pth")]


def test_resolve_override_cache_missing(dirs):
    supplied = local_file(dirs["tmp"])
    assert weights.resolve("openface", override=supplied) == supplied          # a file wins, any name
    folder = dirs["tmp"] / "folder"
    (folder / "checkpoints").mkdir(parents=True)
    shutil.copy(supplied, folder / "checkpoints" / "openface.pth")
    assert weights.resolve("openface", override=folder) == folder / "checkpoints" / "openface.pth"
    with pytest.raises(UserError, match=r"--openface-weights .*no such file or directory"):
        weights.resolve("openface", override=dirs["tmp"] / "missing.pth", option="--openface-weights")
    with pytest.raises(UserError, match="holds no pose_model.pth"):
        weights.resolve("openpose-coco", override=folder)
    # cache
    with pytest.raises(UserError) as err:
        weights.resolve("fan-2d")
    msg = str(err.value)
    assert "\n" not in msg and "2DFAN4-11f355bf06.pth.tar" in msg
    assert "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar" in msg
    assert str(dirs["hub"] / "2DFAN4-11f355bf06.pth.tar") in msg and "animbench weights download fan-2d" in msg
    with pytest.raises(UserError) as err:
        weights.resolve("openpose-coco")
    msg = str(err.value)
    assert "\n" not in msg and "open https://yadi.sk/d/0L-PgAaGRKgkJA" in msg and "download pose_model.pth" in msg
    assert str(dirs["cache"] / "pose_model.pth") in msg and "weights download" not in msg
    dest = weights.install("fan-2d", supplied)
    assert weights.resolve("fan-2d") == dest


def test_install(dirs):
    supplied = local_file(dirs["tmp"])
    dest = weights.install("s3fd", supplied)
    assert dest == dirs["hub"] / "s3fd-619a316812.pth" and dest.read_bytes() == DATA    # where face-alignment looks
    with pytest.raises(UserError, match=r"not the expected openface.pth \(git blob"):
        weights.install("openface", supplied)                  # openface.pth's git blob id is in the manifest
    dest = weights.install("openpose-coco", supplied)
    assert dest == dirs["cache"] / "pose_model.pth" and dest.read_bytes() == DATA
    assert not list(dest.parent.glob("*.part"))
    assert weights.install("openpose-coco", dest) == dest                                  # itself: no-op
    with pytest.raises(UserError, match="no such file to install"):
        weights.install("openface", dirs["tmp"] / "nope.pth")
    known = entry(sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(UserError, match=r"not the expected test-w.pth \(sha256"):
        weights.install(known, supplied)
    assert weights.install(known, supplied, force=True).read_bytes() == DATA
    assert weights.cmd_install("reid-market1501", supplied)[0].startswith("reid-market1501: installed")


def test_verify_known_hashes(dirs):
    good = entry(sha256=hashlib.sha256(DATA).hexdigest(), size=len(DATA))
    weights.install(good, local_file(dirs["tmp"]))
    result, = weights.verify(good)
    assert result.status == "ok" and result.ok and result.sha256 == hashlib.sha256(DATA).hexdigest()
    corrupted = bytearray(DATA)
    corrupted[10] ^= 1
    weights.path(good).write_bytes(bytes(corrupted))
    result, = weights.verify([good])
    assert result.status == "mismatch" and not result.ok and "sha256" in result.detail
    assert "delete it" in result.advice
    weights.path(good).write_bytes(DATA[:-1])
    assert "size" in weights.verify(good)[0].detail
    # git blob id (openface's manifest checksum), computed independently
    blob = hashlib.sha1(b"blob %d\0" % len(DATA) + DATA).hexdigest()
    if shutil.which("git"):
        out = subprocess.run(["git", "hash-object", "--no-filters", str(local_file(dirs["tmp"]))],
                             capture_output=True, text=True, check=True).stdout.strip()
        assert out == blob
    assert weights.check_file(entry(git_blob_sha1=blob), local_file(dirs["tmp"])).status == "ok"
    assert weights.check_file(entry(git_blob_sha1="0" * 40), local_file(dirs["tmp"])).status == "mismatch"


def test_verify_prefixes_unknown_missing(dirs):
    supplied = local_file(dirs["tmp"])
    prefix = hashlib.sha256(DATA).hexdigest()[:8]
    assert weights.check_file(entry(sha256_prefix=prefix, prefix_enforced=True), supplied).status == "ok"
    assert weights.check_file(entry(sha256_prefix="deadbeef", prefix_enforced=True), supplied).status == "mismatch"
    soft = weights.check_file(entry(sha256_prefix="deadbeef"), supplied)     # face-alignment: informational
    assert soft.status == "unchecked" and soft.ok and "does not match" in soft.detail
    assert weights.check_file(entry(), supplied).status == "unchecked"
    results = weights.verify("all")
    assert [r.name for r in results] == list(weights.names()) and {r.status for r in results} == {"missing"}
    lines, ok = weights.cmd_verify("all")
    assert ok and lines[0].split()[:2] == ["NAME", "STATUS"] and len(lines) == 1 + len(results)
    assert weights.cmd_verify(["openface"])[1] is False
    weights.install("openface", supplied, force=True)
    assert weights.verify("openface")[0].status == "mismatch"                 # not the git blob of openface.pth
    weights.install("vgg19", supplied, force=True)
    assert weights.verify("vgg19")[0].status == "mismatch"                    # torchvision's enforced prefix


def test_list_rows(dirs):
    weights.install("s3fd", local_file(dirs["tmp"]))
    rows = {r["name"]: r for r in weights.list_rows()}
    assert rows["s3fd"]["present"] and not rows["fan-2d"]["present"]
    assert rows["openpose-coco"]["source"].startswith("manual: https://yadi.sk/")
    lines = weights.cmd_list()
    assert len(lines) == 1 + len(rows) and all(any(line.startswith(n) for line in lines) for n in rows)


def test_download_refuses_manual_entries(dirs):
    with pytest.raises(UserError) as err:
        weights.download("reid-market1501")
    msg = str(err.value)
    assert "\n" not in msg and "cannot be downloaded automatically" in msg
    assert "open https://yadi.sk/d/jAPhvFEFp6qzIw" in msg and str(dirs["cache"] / "reid_model.pth") in msg
    with pytest.raises(UserError, match="cannot be downloaded"):
        weights.cmd_download(["openpose-coco"])


def fake_retrieve(source, calls, fail_first=0):
    def retrieve(url, known_hash=None, fname=None, path=None, processor=None, downloader=None, progressbar=False):
        calls.append({"url": url, "known_hash": known_hash, "fname": fname, "path": path})
        if len(calls) <= fail_first:
            raise ConnectionError("Name or service not known")
        Path(path).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, Path(path) / fname)
        return str(Path(path) / fname)
    return retrieve


def test_download_with_pooch(dirs, monkeypatch):
    source = local_file(dirs["tmp"])
    calls = []
    monkeypatch.setattr(pooch, "retrieve", fake_retrieve(source, calls))
    dest = weights.download("fan-2d")                      # face-alignment file -> torch hub checkpoints
    assert dest == dirs["hub"] / "2DFAN4-11f355bf06.pth.tar" and dest.read_bytes() == DATA
    assert calls[-1] == {"url": weights.get("fan-2d").urls[0], "known_hash": None,
                         "fname": "2DFAN4-11f355bf06.pth.tar", "path": str(dirs["hub"])}
    weights.download("fan-2d")                             # present and not a mismatch: kept
    assert len(calls) == 1
    weights.download("fan-2d", force=True)
    assert len(calls) == 2
    sha = hashlib.sha256(DATA).hexdigest()
    known = entry(sha256=sha)
    assert weights.download(known) == dirs["cache"] / "test-w.pth"
    assert calls[-1]["known_hash"] == f"sha256:{sha}" and calls[-1]["path"] == str(dirs["cache"])
    done = []
    monkeypatch.setattr(store, "download", lambda e, **kw: done.append(e.name) or Path(e.filename))
    weights.cmd_download("all", progress=False)            # manual entries are skipped by "all"
    assert done == ["fan-2d", "s3fd", "openface", "vgg19"]


def test_download_retries_and_failures(dirs, monkeypatch):
    source = local_file(dirs["tmp"])
    calls = []
    monkeypatch.setattr(pooch, "retrieve", fake_retrieve(source, calls, fail_first=2))
    assert weights.download("s3fd", retries=3, backoff_s=0).read_bytes() == DATA
    assert len(calls) == 3
    calls.clear()
    monkeypatch.setattr(pooch, "retrieve", fake_retrieve(source, calls, fail_first=99))
    with pytest.raises(UserError) as err:
        weights.download("fan-2d", retries=2, backoff_s=0)
    msg = str(err.value)
    assert len(calls) == 2 and "\n" not in msg and "ConnectionError" in msg
    assert weights.get("fan-2d").urls[0] in msg and str(dirs["hub"] / "2DFAN4-11f355bf06.pth.tar") in msg
    good = weights.install("s3fd", source)                # a forced re-download that fails keeps the old file
    with pytest.raises(UserError, match="could not download s3fd"):
        weights.download("s3fd", force=True, retries=1, backoff_s=0)
    assert good.read_bytes() == DATA and not list(good.parent.glob("*.old"))
    # a downloaded file failing a check the publisher enforces is removed
    monkeypatch.setattr(pooch, "retrieve", fake_retrieve(source, calls))
    with pytest.raises(UserError, match="failed its check"):
        weights.download("openface", backoff_s=0)                 # git blob of openface.pth
    assert not weights.path("openface").exists()
    with pytest.raises(UserError, match="failed its check"):
        weights.download("vgg19", backoff_s=0)                    # torchvision's sha256 prefix
    assert not weights.path("vgg19").exists()
