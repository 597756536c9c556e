"""Fast per-frame pixel suite: L1, PSNR and skimage-convention SSIM, each also for every mask M and its inversion
1−M (masked_fill="zeros": the metric of (M⊙pred, M⊙gt) over the full frame).

`fast_frame_metrics` is a drop-in for `compute_frame_metrics(pred, gt, metrics, masks)`: same columns in the same
order, float64 values, within ~1e-7 of scikit-image for SSIM and ~1e-10 dB for PSNR.

Algorithm
---------
* L1 and PSNR in float64 from one error map e = Σ_c (pred − gt)²: a masked MSE is a weighted sum of e (weights M,
  or M² and (1−M)² for a soft mask; Σ(1−M)e = Σe − ΣMe for a binary one).
* SSIM (7×7 uniform window, sample covariance, 3-pixel border crop = the *valid* part of a box filter) in the
  sum/difference basis s = x+y, d = x−y: with window sums a = Σs, b = Σd, σ = NΣs² − a², δ = NΣd² − b² (N = 49)
        SSIM = (a² − b² + K1)(σ − δ + K2) / ((a² + b² + K1)(σ + δ + K2)),   K1 = 2N²C1, K2 = 2N²C2·48/49,
  so one set of moments is 4 box-filtered maps, and δ, the term SSIM is most sensitive to, comes from the
  difference image itself (no cancellation between the frames). Writing each factor as 1 − 2t, t = β/(α+β),
  the map's sum is P − 2Σt1 − 2Σt2 + 4Σt1t2.
* Box sums in float32, into reused per-thread buffers: a strided window sum down the columns, then shifted adds
  (x0+x1+x2) + (x3+x4+x5) + x6 along the rows. Per frame and channel: [s, d, Ns², Nd²]; per binary mask M⊙(the
  same) (M² = M); per soft mask M⊙[s, d], M²⊙ and M⊙[Ns², Nd²]. The inverted mask's moments follow by linearity
  (box((1−M)q) = box(q) − box(Mq); (1−M)² = 1 − 2M + M²). One mask at a time, so the working set stays in the
  caches. K1, K2 are added to a², σ, never to NΣs² (a constant added to float32 values on one grid is rounded the
  same way everywhere: a bias of up to 1e-5 in SSIM).
* Precision: float32 moments are accurate where the data varies (rounding errors average out over the frame) and
  exact where it is masked out (zeros). The one weak spot is flat windows (equal values) with a large level of d
  (or of s where d varies): their float32 rounding of NΣd² − (Σd)² is systematic (~3ε·NΣd²) and SSIM is most
  sensitive there. An error bound summed over such windows of the full-frame moments (`_risk`) flags these frames
  (constant or offset flat regions, ~1e-4 error otherwise) and they are recomputed in float64 (~2x slower).
* On CPU, frames are spread over `torch.get_num_threads()` worker threads running single-threaded torch ops
  (no per-op barriers); on other devices chunks of frames run batched.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterable, List, Optional

import torch

from animbench.metrics.masked import _as_mask
from animbench.metrics.pixel import PSNR_CAP_DB
from animbench.metrics.registry import column_name, get_metric

NW = 49                      # pixels in the 7x7 window
_COV_NORM = 49.0 / 48.0      # skimage's sample covariance
#: float32 SSIM error estimate per frame above which a frame is recomputed in float64 (tolerance: 1e-5)
FLOAT32_RISK = 2e-6
_WORKSPACES: Dict[int, dict] = {}
_POOLS: Dict[int, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def _ws(name: str, shape, dtype, device) -> torch.Tensor:
    """A reusable per-thread buffer (one per name and dtype, views of any shape): on CPU, fresh multi-MB
    allocations cost page faults on every call."""
    if device.type != "cpu":
        return torch.empty(shape, dtype=dtype, device=device)
    cache = _WORKSPACES.setdefault(threading.get_ident(), {})
    numel = 1
    for k in shape:
        numel *= k
    buf = cache.get((name, dtype))
    if buf is None or buf.numel() < numel:
        buf = cache[(name, dtype)] = torch.empty(numel, dtype=dtype, device=device)
    return buf[:numel].view(shape)


def release_workspaces() -> None:
    """Free the cached CPU buffers (about 14 MiB per worker thread at 256x256 with 6 masks)."""
    _WORKSPACES.clear()


def _rows7(src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Sums of 7 consecutive values along the last axis, into out: (x0+x1+x2) + (x3+x4+x5) + x6 by shifted adds,
    ~20% faster on CPU than a window-sum reduction along the contiguous axis."""
    *lead, w = src.shape
    s3 = torch.add(src[..., :-2], src[..., 1:-1], out=_ws("box.3", (*lead, w - 2), src.dtype, src.device))
    s3.add_(src[..., 2:])
    return torch.add(s3[..., :w - 6], s3[..., 3:w - 3], out=out).add_(src[..., 6:])


def _box(src: torch.Tensor, out: Optional[torch.Tensor] = None, name: str = "box") -> torch.Tensor:
    """7x7 box sums (valid part) of (..., H, W) -> (..., H-6, W-6), into `out` or a workspace named `name`."""
    *lead, h, w = src.shape
    tmp = torch.sum(src.unfold(-2, 7, 1), -1, out=_ws("box.v", (*lead, h - 6, w), src.dtype, src.device))
    return _rows7(tmp, _ws(name, (*lead, h - 6, w - 6), src.dtype, src.device) if out is None else out)


def _mask_params(mb: List[torch.Tensor], ms: List[torch.Tensor], dt) -> dict:
    """The binary masks mb and the soft masks ms ((n,1,H,W) each) stacked in dtype dt, and the soft masks' squares."""
    p = {}
    for kind, lst in (("b", mb), ("s", ms)):
        if lst:
            p[kind] = md = _ws(kind + "m", (len(lst),) + tuple(lst[0].shape), dt, lst[0].device)
            for i, m in enumerate(lst):
                md[i].copy_(m)
    if ms:
        p["s2"] = torch.mul(p["s"], p["s"], out=_ws("s2", p["s"].shape, dt, p["s"].device))
    return p


def _tail(wk: torch.Tensor, acc_t: torch.Tensor, acc_x: torch.Tensor) -> None:
    """Row sums for Σ over the map of (α1−β1)(α2−β2) / ((α1+β1)(α2+β2)), wk = (G, 2 [first, second order],
    2 [α, β], n, C, h, w), in place: with t = β/(α+β) that is P − 2Σt1 − 2Σt2 + 4Σt1t2; the rows' Σt and Σt1t2
    go to acc_t (G,2,n,C,h) and acc_x (G,n,C,h), to be added up in float64."""
    t = wk[:, :, 1].div_(wk[:, :, 0].add_(wk[:, :, 1]))
    torch.sum(t, dim=-1, out=acc_t)
    torch.sum(t[:, 0].mul_(t[:, 1]), dim=-1, out=acc_x)


def _risk(full: torch.Tensor, k2: float) -> torch.Tensor:
    """Estimated float32 error of the SSIM map's mean from [Σs, Σd, σ + K2, δ] (every 8th row): in windows where
    d is flat (δ ≈ 0) the error of δ is up to ~3ε·NΣd² and moves SSIM by 2Δδ/(σ+δ+K2), systematically; where s
    is flat the error of σ, ~3ε·NΣs², moves it by 2Δσ·δ/(σ+δ+K2)². Returns (n, C)."""
    f1s, f1d, sk, dl = full[..., ::8, :].unbind(0)
    f2d = torch.addcmul(dl, f1d, f1d)                                           # NΣd²
    sig = sk - k2
    f2s = torch.addcmul(sig, f1s, f1s)                                          # NΣs²
    den = sk + dl
    r = (f2d / den).masked_fill_(dl > 1e-6 * f2d, 0)
    r += (f2s * dl / (den * den)).masked_fill_(sig > 1e-6 * f2s, 0)
    return r.sum(dim=(-1, -2)).double() * (6 * torch.finfo(full.dtype).eps / (r.shape[-1] * r.shape[-2]))


def _ssim_sets(x: torch.Tensor, y: torch.Tensor, p: dict):
    """SSIM map sums over the cropped frame of (n,C,H,W) frames for the sets [full, (mask, inverted mask) for each
    binary mask, then for each soft mask] as (sets, n, C) float64, in x's dtype; and for float32 the (n, C)
    error estimate."""
    n, c, h, w = x.shape
    hh, ww = h - 6, w - 6
    dev, dt = x.device, x.dtype
    nb = p["b"].shape[0] if "b" in p else 0
    ns = p["s"].shape[0] if "s" in p else 0
    acc_t = _ws("acc_t", (1 + 2 * nb + 2 * ns, 2, n, c, hh), dt, dev)
    acc_x = _ws("acc_x", (1 + 2 * nb + 2 * ns, n, c, hh), dt, dev)
    k2, k1v = p["k2"], p["k1v"]
    base = _ws("base", (4, n, c, h, w), dt, dev)                               # [s, d, Ns², Nd²]
    torch.add(x, y, out=base[0])
    torch.sub(x, y, out=base[1])
    torch.mul(base[0:2], base[0:2], out=base[2:4]).mul_(NW)
    full = _box(base, name="full")                                             # (4,n,C,hh,ww)
    pre = _ws("pre", (6 if ns else 4, n, c, h, w), dt, dev)
    pair = _ws("pair", (2, 4, n, c, hh, ww), dt, dev)   # sets × [Σwz (s, d), NΣ(wz)²]
    f1, f2, sets = pair[:, 0:2], pair[:, 2:4], pair.view(2, 2, 2, n, c, hh, ww)
    pre4, pair0, pair1 = pre[0:4], pair[0], pair[1]
    for i in range(nb + ns):
        if i < nb:                                                             # binary: (M q)² = M q²
            torch.mul(p["b"][i], base, out=pre4)                               # M⊙[s, d, Ns², Nd²]
            _box(pre4, pair0)
            torch.sub(full, pair0, out=pair1)                                  # inverted mask, by linearity
        else:                                                                  # soft: (1−M)² = 1 − 2M + M²
            ms, ms2 = p["s"][i - nb], p["s2"][i - nb]
            torch.mul(ms, base[0:2], out=pre[0:2])
            torch.mul(ms2, base[2:4], out=pre[2:4])                            # M²⊙[Ns², Nd²]
            torch.mul(ms, base[2:4], out=pre[4:6])                             # M⊙[Ns², Nd²]
            tmp, ex = _ws("box.v", (6, n, c, hh, w), dt, dev), _ws("ex", (2, n, c, hh, ww), dt, dev)
            torch.sum(pre.unfold(-2, 7, 1), -1, out=tmp)
            _rows7(tmp[0:4], pair0)
            _rows7(tmp[4:6], ex)
            torch.sub(full[0:2], pair0[0:2], out=pair1[0:2])
            torch.add(full[2:4], pair0[2:4], out=pair1[2:4]).sub_(ex, alpha=2)
        f2.addcmul_(f1, f1, value=-1)[:, 0].add_(k2)                           # [σ + K2, δ]
        torch.addcmul(k1v, f1, f1, out=f1)                                     # [a² + K1, b²]
        _tail(sets, acc_t[1 + 2 * i:3 + 2 * i], acc_x[1 + 2 * i:3 + 2 * i])
    full[2:4].addcmul_(full[0:2], full[0:2], value=-1)[0].add_(k2)
    risk = _risk(full, k2) if dt == torch.float32 else None
    torch.addcmul(k1v, full[0:2], full[0:2], out=full[0:2])
    _tail(full.view(1, 2, 2, n, c, hh, ww), acc_t[0:1], acc_x[0:1])
    return hh * ww - 2 * acc_t.double().sum(dim=(1, -1)) + 4 * acc_x.double().sum(dim=-1), risk


def _is_binary(m: torch.Tensor) -> bool:
    """All values 0 or 1: for values in [0, 1], Σm² = Σm exactly then (integer sums), and Σm² < Σm otherwise."""
    v = m.reshape(-1)
    lo, hi = torch.aminmax(v)
    return bool(lo >= 0) and bool(hi <= 1) and bool(torch.dot(v, v) == v.sum())


def _ssim_all(pred, gt, masks, kinds, data_range, split, dt):
    """(sums (sets, n) float64 over channels in the sets order [full, binary pairs.., soft pairs..], risk (n,))."""
    n, c = pred.shape[:2]
    dev = pred.device
    p = _mask_params([m for m, b in zip(masks, kinds) if b], [m for m, b in zip(masks, kinds) if not b], dt)
    k1, k2 = 2 * NW * NW * (0.01 * data_range) ** 2, 2 * NW * NW * (0.03 * data_range) ** 2 / _COV_NORM
    p.update(k2=k2, k1v=torch.tensor([k1, 0.0], dtype=dt, device=dev).view(2, 1, 1, 1, 1))
    x, y = pred, gt
    if x.dtype != dt:                    # (mixed-precision elementwise ops are slow on CPU)
        x, y = _ws("x", x.shape, dt, dev).copy_(x), _ws("y", y.shape, dt, dev).copy_(y)
    groups = [slice(i, i + 1) for i in range(c)] if split else [slice(0, c)]   # a channel at a time on CPU
    parts = [_ssim_sets(x[:, g], y[:, g], p) for g in groups]
    sums = sum(s.sum(dim=-1) for s, _ in parts)
    risk = None if dt == torch.float64 else sum(r.sum(dim=-1) for _, r in parts) / c
    return sums, risk


def _chunk(pred, gt, masks: List[torch.Tensor], flags, data_range, split) -> Dict[str, torch.Tensor]:
    """Values for a chunk of n frames: l1 (n,), mse and ssim (sets, n) with the sets [full, mask 1, inverted
    mask 1, mask 2, ...]; masks are (n,1,H,W) in the caller's order."""
    want_l1, want_psnr, want_ssim = flags
    out = {}
    n, c, h, w = pred.shape
    dev, f64 = pred.device, torch.float64
    kinds = [_is_binary(m) for m in masks]
    if want_l1 or want_psnr:
        d = torch.sub(pred, gt, out=_ws("d", (n, c, h, w), f64, dev))
        if want_l1:
            out["l1"] = torch.linalg.vector_norm(d, 1, dim=(1, 2, 3)) / (c * h * w)
        if want_psnr:
            e = torch.sum(d.mul_(d), dim=1, out=_ws("e", (n, h, w), f64, dev)).view(n, h * w)
            total = e.sum(dim=-1)
            rows = [total]
            wt = _ws("wt", (n, h * w), f64, dev)
            dot = (lambda a, b: torch.dot(a[0], b[0]).view(1)) if n == 1 else (lambda a, b: (a * b).sum(dim=-1))
            for m, binary in zip(masks, kinds):                 # Σw²e for w = M and w = 1 − M
                m = m.reshape(n, h * w).to(f64)
                if binary:
                    sm = dot(m, e)
                    rows += [sm, total - sm]
                else:
                    rows += [dot(torch.mul(m, m, out=wt), e), dot(torch.sub(1, m, out=wt).pow_(2), e)]
            out["mse"] = torch.stack(rows) / (c * h * w)
    if want_ssim:
        sums, risk = _ssim_all(pred, gt, masks, kinds, data_range, split, torch.float32)
        redo = (risk > FLOAT32_RISK).nonzero()[:, 0].tolist()
        if redo:                                                # frames where float32 may miss the tolerance
            sums[:, redo] = _ssim_all(pred[redo], gt[redo], [m[redo] for m in masks], kinds, data_range, split,
                                      f64)[0]
        order = [i for i, b in enumerate(kinds) if b] + [i for i, b in enumerate(kinds) if not b]
        rows = [0] * (1 + 2 * len(masks))                       # back to the caller's mask order
        for j, i in enumerate(order):
            rows[1 + 2 * i], rows[2 + 2 * i] = 1 + 2 * j, 2 + 2 * j
        out["ssim"] = sums[rows] / (c * (h - 6) * (w - 6))
    return out


def _pool(workers: int) -> ThreadPoolExecutor:
    with _LOCK:
        if workers not in _POOLS:   # single-threaded torch ops in the workers (OpenMP settings are per thread)
            _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="animbench-fast",
                                                 initializer=torch.set_num_threads, initargs=(1,))
        return _POOLS[workers]


def fast_frame_metrics(pred: torch.Tensor, gt: torch.Tensor, metrics: Iterable[str] = ("l1", "psnr", "ssim"),
                       masks: Optional[Dict[str, torch.Tensor]] = None, identical: str = "cap",
                       cap: float = PSNR_CAP_DB, data_range: float = 1.0, threads: Optional[int] = None,
                       chunk: Optional[int] = None) -> Dict[str, torch.Tensor]:
    """Drop-in for `compute_frame_metrics(pred, gt, metrics, masks)` (masked_fill="zeros", skimage SSIM):
    {column: Tensor[N] float64, on CPU} with the same columns in the same order.

    identical="cap" clamps PSNR at `cap` dB, "skip" gives NaN above it (see `animbench.metrics.pixel.psnr`).
    Speed only: `threads` (CPU worker threads over frames, default torch.get_num_threads()) and `chunk` (frames
    per batched call, default 1 on CPU and 32 on other devices)."""
    if pred.shape != gt.shape or pred.dim() != 4:
        raise ValueError(f"expected two (N,C,H,W) tensors of equal shape, got {tuple(pred.shape)} and "
                         f"{tuple(gt.shape)}")
    if identical not in ("cap", "skip"):
        raise ValueError(f"identical={identical!r}: use 'cap' or 'skip'")
    metrics = list(metrics)
    for name in metrics:
        get_metric(name)                                                         # unknown names raise
        if name not in ("l1", "psnr", "ssim"):
            raise ValueError(f"fast_frame_metrics computes l1, psnr and ssim, not {name!r}")
    n, c, h, w = pred.shape
    if "ssim" in metrics and (h < 7 or w < 7):
        raise ValueError(f"SSIM needs frames of at least 7x7, got {h}x{w}")
    if pred.dtype not in (torch.float32, torch.float64) or pred.dtype != gt.dtype:
        pred, gt = pred.double(), gt.double()
    gt = gt.to(pred.device)
    names = list(masks or {})
    for k in names:
        column_name("psnr", k)                                                   # validates the name
    mlist = [_as_mask(masks[k].to(pred.device), pred) for k in names]           # (N,1,H,W), pred's dtype
    flags = ("l1" in metrics, "psnr" in metrics, "ssim" in metrics)
    cpu = pred.device.type == "cpu"
    chunk = chunk or (1 if cpu else 32)
    spans = [(i, min(i + chunk, n)) for i in range(0, n, chunk)]

    def run(span):
        a, b = span
        with torch.no_grad():                                                    # (grad mode is per thread)
            return _chunk(pred[a:b], gt[a:b], [m[a:b] for m in mlist], flags, data_range, split=cpu)

    if not any(flags) or n == 0:
        parts = []
    elif cpu:   # always in the pool's threads, whose torch ops are single-threaded
        workers = max(1, min(threads or torch.get_num_threads(), len(spans)))
        main_threads = torch.get_num_threads()
        try:
            parts = list(_pool(workers).map(run, spans))
        finally:
            torch.set_num_threads(main_threads)         # a worker's start-up set the process default to 1
    else:
        parts = [run(s) for s in spans]
    res = {k: torch.cat([p[k] for p in parts], dim=-1).cpu() for k in (parts[0] if parts else {})}
    return _columns(res, metrics, names, identical, cap, data_range, n)


def _columns(res, metrics, names, identical, cap, data_range, n) -> Dict[str, torch.Tensor]:
    row = {k: (1 + 2 * i, 2 + 2 * i) for i, k in enumerate(names)}    # (mask, inverted mask) rows
    out: Dict[str, torch.Tensor] = {}
    for name in metrics:
        empty = torch.zeros(1 + 2 * len(names), n, dtype=torch.float64)
        if name == "l1":
            out["l1"] = res.get("l1", empty[0])
            continue
        if name == "psnr":
            vals = 10.0 * torch.log10(data_range ** 2 / res.get("mse", empty).clamp_min(1e-300))
            vals = vals.masked_fill(vals > cap, float("nan")) if identical == "skip" else vals.clamp_max(cap)
        else:
            vals = res.get("ssim", empty)
        out[name] = vals[0]
        for k in names:
            out[column_name(name, k)], out[column_name(name, k, True)] = vals[row[k][0]], vals[row[k][1]]
    return out
