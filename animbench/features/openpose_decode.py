"""pose-evaluation's body-pose preprocessing and per-frame joint decode, vectorised in torch.

What ``extract.py: extract_body_pose`` (AliaksandrSiarohin/pose-evaluation @ 1bc4cae) does per frame, with
the fork AliaksandrSiarohin/pytorch_Realtime_Multi-Person_Pose_Estimation @ 257d8b4 (``evaluate/coco_eval.py:
get_multiplier, get_outputs, handle_paf_and_heat``, ``network/im_transform.py: crop_with_factor``,
``training/datasets/coco_data/preprocessing.py: rtpose_preprocess``, ``network/post.py: decode_pose, NMS,
find_peaks``); every step below is reproduced here on whole batches, on the frames' device:

1. uint8 RGB frame (H, W, 3) -> BGR (``frame[..., ::-1]``). The same steps 2-5 run on this image and on its
   horizontal mirror (``frame[:, ::-1]``), separately (resampling is not mirror-symmetric bit for bit).
2. Scale: ``multiplier = 368 / H``, ``dest = multiplier * H`` (float), ``im_scale = dest / min(H, W)``: the
   SHORTER side becomes 368 (not the height when H > W). ``cv2.resize(img, None, fx=im_scale, fy=im_scale)``
   with the default INTER_LINEAR on uint8: output size round(W*s) x round(H*s) (half to even), source
   coordinate (d + 0.5) / s - 0.5 (float32), 11-bit fixed-point weights, border replicate, OpenCV's 8-bit
   vertical rounding ``((b0*(r0>>4))>>16) + ((b1*(r1>>4))>>16) + 2) >> 2``; an exact 2x shrink (s = 0.5)
   becomes INTER_AREA, the rounded 2x2 mean. Reproduced bit-exactly (``resize_linear_u8``).
3. Zero-pad (uint8 0, bottom/right) to multiples of 8, then ``x / 256 - 0.5`` in float32 (padding = -0.5),
   CHW, one image per network call upstream (batched here).
4. Network stage 6: PAFs (38) and heatmaps (19) at 1/8 resolution. Each is ``cv2.resize(fx=8, fy=8,
   INTER_CUBIC)`` (float32, Keys a = -0.75, border replicate), cropped to the resized (unpadded) size and
   ``cv2.resize`` INTER_CUBIC back to (W, H). Reproduced with OpenCV's float32 operation order
   (``resize_cubic_f32``): equal bit for bit to OpenCV 5.0's generic path, which 19/38-channel maps always
   take (tests/test_openpose.py checks against cv2; 1/3/4-channel float maps may go to IPP instead).
   pose-evaluation pinned opencv-python 3.4.3.18, whose pre-universal-intrinsics SSE code may have summed
   the vertical pass left to right: a difference of at most ~1 float32 ulp, not reproduced here.
5. Flip averaging (float64): ``heat = (h + h_flip[:, ::-1][..., HEAT_FLIP]) / 2`` and ``paf = (p +
   p_flip'[:, ::-1][..., PAF_FLIP]) / 2`` where p_flip' has its x-components (even channels) negated.
   HEAT_FLIP swaps left/right joints (background 18 stays); PAF_FLIP swaps the limbs' (x, y) channel pairs of
   mirrored limbs (see ``HEAT_FLIP``/``PAF_FLIP``, derived here from the joint/limb tables).
6. ``decode_pose(frame, {'thre1': 0.1, 'thre2': 0.05, 'thre3': 0.5}, heat, paf)``: for each joint type
   0..17, peaks = pixels with ``maximum_filter(map, footprint=cross 3x3) == map`` (scipy's default 'reflect'
   border: out-of-image neighbours never win, i.e. >= its in-image 4-neighbours) and ``map > 0.1``, in
   row-major order (``np.nonzero``). Each peak is "refined" with ``upsampFactor = H / H = 1``: the argmax
   (first in row-major order) of the 5x5 window around it, clipped to the image (``cv2.resize`` of the patch
   by 1 is a copy; no Gaussian filter, ``bool_gaussian_filt=False``); its (x, y) = ``int(round(...))`` of an
   integer, i.e. that argmax pixel. No peak threshold other than thre1 affects the joints.
7. extract.py keeps ``joint_list`` (all peaks of all people, NOT grouped; thre2/thre3 and the PAFs only
   affect the person grouping, which it discards) and writes ``tmp = -np.ones((18, 2))``,
   ``tmp[types] = joint_list[:, :2]``: float64 (18, 2) (x, y) pixel coordinates at the frame's resolution,
   -1 for a joint type without peaks, and for a repeated type the LAST peak in (type, row-major) order wins.
   So only the last peak per type needs refining: ``decode_peaks`` does exactly that.

Only heatmaps decide the stored value, so ``heatmaps(...)`` skips the PAF resampling; ``heatmaps_and_pafs``
returns both (for tests and inspection).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch

INPUT_SIZE = 368
STRIDE = 8
THRESHOLDS = {"thre1": 0.1, "thre2": 0.05, "thre3": 0.5}
PEAK_THRESHOLD = THRESHOLDS["thre1"]
_SIMD_LANES = 4  # float32 lanes of OpenCV's baseline (SSE) build: its vertical cubic pass has a scalar tail
REFINE_RADIUS = 2  # NMS win_size: 5x5 window
NUM_JOINTS = 18
JOINT_NAMES = ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist", "r_hip",
               "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear")
# PAF channels (2i, 2i+1) = (x, y) of limb i, joints (from, to), in the network's output order.
PAF_LIMBS = ((1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13), (1, 2), (2, 3), (3, 4), (2, 16), (1, 5),
             (5, 6), (6, 7), (5, 17), (1, 0), (0, 14), (0, 15), (14, 16), (15, 17))


def _mirror_joint(j: int) -> int:
    name = JOINT_NAMES[j]
    if name[:2] in ("r_", "l_"):
        return JOINT_NAMES.index(("l_" if name[0] == "r" else "r_") + name[2:])
    return j


HEAT_FLIP: Tuple[int, ...] = tuple(_mirror_joint(j) for j in range(NUM_JOINTS)) + (NUM_JOINTS,)
PAF_FLIP: Tuple[int, ...] = tuple(
    2 * PAF_LIMBS.index((_mirror_joint(a), _mirror_joint(b))) + c for a, b in PAF_LIMBS for c in (0, 1))


# ----------------------------------------------------------------------------------------------------------
# OpenCV resize emulation
# ----------------------------------------------------------------------------------------------------------
def cv_output_size(size: int, factor: float) -> int:
    """``saturate_cast<int>(size * factor)``: rounding half to even, as cv::resize sizes dsize from fx/fy."""
    return int(round(size * factor))


def _src_coords(n_out: int, scale: float) -> Tuple[np.ndarray, np.ndarray]:
    """OpenCV: fx = (float)((d + 0.5) * scale - 0.5); sx = floor(fx); fx -= sx (float32)."""
    f = ((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f)
    return s.astype(np.int64), (f - s).astype(np.float32)


def _linear_plan(n_in: int, n_out: int, scale: float, clamp_weights: bool):
    """Fixed-point INTER_LINEAR taps (i0, i1, w0, w1), w = round((1-f, f) * 2048), indices clipped to the image.

    OpenCV zeroes f at the left/right border (``clamp_weights``, x direction) but not at the top/bottom,
    where the two clipped rows are the same row, weighted (1-f, f).
    """
    s, f = _src_coords(n_out, scale)
    if clamp_weights:
        low, high = s < 0, s >= n_in - 1
        f = np.where(low | high, np.float32(0), f).astype(np.float32)
        s = np.where(low, 0, np.where(high, n_in - 1, s))
    w0 = np.round((np.float32(1) - f) * np.float32(2048)).astype(np.int64)
    w1 = np.round(f * np.float32(2048)).astype(np.int64)
    return np.clip(s, 0, n_in - 1), np.clip(s + 1, 0, n_in - 1), w0, w1


def _cubic_plan(n_in: int, n_out: int, scale: float):
    """INTER_CUBIC taps: indices (4, n_out) clamped to the image (replicate), float32 weights (4, n_out)."""
    s, x = _src_coords(n_out, scale)
    a, one = np.float32(-0.75), np.float32(1)
    x1, y = x + one, one - x
    w0 = ((a * x1 - np.float32(5) * a) * x1 + np.float32(8) * a) * x1 - np.float32(4) * a
    w1 = ((a + np.float32(2)) * x - (a + np.float32(3))) * x * x + one
    w2 = ((a + np.float32(2)) * y - (a + np.float32(3))) * y * y + one
    w3 = one - w0 - w1 - w2
    idx = np.clip(s[None, :] + np.arange(-1, 3)[:, None], 0, n_in - 1)
    return idx, np.stack([w0, w1, w2, w3]).astype(np.float32)


def resize_linear_u8(x: torch.Tensor, out_h: int, out_w: int, scale_y: float, scale_x: float) -> torch.Tensor:
    """``cv2.resize(img, ..., interpolation=INTER_LINEAR)`` of uint8 images (N, C, H, W), bit-exact.

    ``scale_*`` = source pixels per output pixel as OpenCV uses them (1 / fx when sized from fx).
    """
    n, c, h, w = x.shape
    if (out_h, out_w) == (h, w):
        return x.clone()
    dev = x.device
    if scale_x == 2.0 and scale_y == 2.0:  # OpenCV turns an exact 2x linear shrink into INTER_AREA
        xi = x.to(torch.int32)
        xi = torch.nn.functional.pad(xi, (0, max(0, 2 * out_w - w), 0, max(0, 2 * out_h - h)))
        full = xi[..., 0:2 * out_h:2, 0:2 * out_w:2] + xi[..., 1:2 * out_h:2, 0:2 * out_w:2] \
            + xi[..., 0:2 * out_h:2, 1:2 * out_w:2] + xi[..., 1:2 * out_h:2, 1:2 * out_w:2]
        if 2 * out_h > h or 2 * out_w > w:  # partial cells at the border: mean of the pixels inside
            ones = torch.ones((1, 1, h, w), dtype=torch.float32, device=dev)
            ones = torch.nn.functional.pad(ones, (0, 2 * out_w - w, 0, 2 * out_h - h))
            count = ones[..., 0::2, 0::2] + ones[..., 1::2, 0::2] + ones[..., 0::2, 1::2] + ones[..., 1::2, 1::2]
            out = torch.where(count == 4, (full + 2) >> 2, torch.round(full.float() / count).to(torch.int32))
        else:
            out = (full + 2) >> 2
        return out.to(torch.uint8)
    c0, c1, a0, a1 = (torch.as_tensor(v, device=dev) for v in _linear_plan(w, out_w, scale_x, True))
    r0, r1, b0, b1 = (torch.as_tensor(v, device=dev) for v in _linear_plan(h, out_h, scale_y, False))
    xi = x.to(torch.int32)
    rows = xi[..., c0] * a0.to(torch.int32) + xi[..., c1] * a1.to(torch.int32)  # (N, C, H, out_w)
    top = (rows[..., r0, :] >> 4) * b0.to(torch.int32)[:, None]
    bottom = (rows[..., r1, :] >> 4) * b1.to(torch.int32)[:, None]
    return (((top >> 16) + (bottom >> 16) + 2) >> 2).to(torch.uint8)


def resize_cubic_f32(x: torch.Tensor, out_h: int, out_w: int, scale_y: float, scale_x: float,
                     keep_h: Optional[int] = None, keep_w: Optional[int] = None) -> torch.Tensor:
    """``cv2.resize(..., interpolation=INTER_CUBIC)`` of float32 maps (N, C, H, W) with OpenCV's float order.

    Horizontal pass first (``((s0*a0 + s1*a1) + s2*a2) + s3*a3``), then vertical (``s0*b0 + (s1*b1 + (s2*b2
    + s3*b3))``, OpenCV >= 4's universal-intrinsics order with 4 float lanes; the last ``(out_w*C) % 4``
    interleaved values of a row use the scalar left-to-right order), all in float32. ``keep_h``/
    ``keep_w``: compute only the first rows/columns of the output (a crop of it).
    """
    n, c, h, w = x.shape
    if (out_h, out_w) == (h, w):
        return x[..., :keep_h, :keep_w].clone()
    dev = x.device
    ci, ca = _cubic_plan(w, out_w, scale_x)
    ri, rb = _cubic_plan(h, out_h, scale_y)
    ci, ca = torch.as_tensor(ci[:, :keep_w], device=dev), torch.as_tensor(ca[:, :keep_w], device=dev)
    ri, rb = torch.as_tensor(ri[:, :keep_h], device=dev), torch.as_tensor(rb[:, :keep_h], device=dev)
    x = x.float()
    rows = x[..., ci[0]] * ca[0]
    for k in range(1, 4):
        rows = rows + x[..., ci[k]] * ca[k]
    t = [rows[..., ri[k], :] * rb[k][:, None] for k in range(4)]
    out = t[0] + (t[1] + (t[2] + t[3]))  # OpenCV's SIMD vertical pass (v_muladd nesting, no FMA)
    # Its scalar tail (flat (x, c)-interleaved row positions >= start) sums left to right.
    start = (out_w * c) // _SIMD_LANES * _SIMD_LANES
    if start < out_w * c and out.shape[-1] == out_w:
        col0 = start // c
        left = ((t[0][..., col0:] + t[1][..., col0:]) + t[2][..., col0:]) + t[3][..., col0:]
        flat = torch.arange(col0, out_w, device=dev)[None, :] * c + torch.arange(c, device=dev)[:, None]
        out[..., col0:] = torch.where((flat >= start)[:, None, :], left, out[..., col0:])
    return out


# ----------------------------------------------------------------------------------------------------------
# Preprocessing and network outputs at frame resolution
# ----------------------------------------------------------------------------------------------------------
def input_geometry(height: int, width: int, input_size: int = INPUT_SIZE) -> dict:
    """Sizes of crop_with_factor: scale, resized (h, w), padded (hp, wp) multiples of 8."""
    multiplier = 1.0 * float(input_size) / float(height)
    dest = multiplier * height
    scale = float(dest) / min(height, width)
    h, w = cv_output_size(height, scale), cv_output_size(width, scale)
    hp, wp = -(-h // STRIDE) * STRIDE, -(-w // STRIDE) * STRIDE
    return {"scale": scale, "resized": (h, w), "padded": (hp, wp)}


def preprocess_bgr(bgr_u8: torch.Tensor, input_size: int = INPUT_SIZE) -> torch.Tensor:
    """uint8 BGR (N, 3, H, W) -> float32 network input (N, 3, hp, wp): resize, zero-pad, x / 256 - 0.5."""
    n, _, height, width = bgr_u8.shape
    g = input_geometry(height, width, input_size)
    (h, w), (hp, wp) = g["resized"], g["padded"]
    inv = 1.0 / g["scale"]
    small = resize_linear_u8(bgr_u8, h, w, inv, inv)
    padded = torch.zeros((n, 3, hp, wp), dtype=torch.uint8, device=bgr_u8.device)
    padded[..., :h, :w] = small
    return padded.float() / 256.0 - 0.5


def to_frame_resolution(maps: torch.Tensor, height: int, width: int, input_size: int = INPUT_SIZE):
    """Stride-8 maps (N, C, hp/8, wp/8) -> (N, C, H, W) float32: cubic x8, crop the padding, cubic to (H, W)."""
    h, w = input_geometry(height, width, input_size)["resized"]
    up = resize_cubic_f32(maps, cv_output_size(maps.shape[2], 8.0), cv_output_size(maps.shape[3], 8.0),
                          1.0 / 8.0, 1.0 / 8.0, keep_h=h, keep_w=w)
    return resize_cubic_f32(up, height, width, 1.0 / (height / h), 1.0 / (width / w))


def _frames_to_bgr(frames) -> torch.Tensor:
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    return frames.permute(0, 3, 1, 2).flip(1)  # (N, 3, H, W), BGR


@torch.no_grad()
def _network_maps(net, frames, device, input_size: int, want_pafs: bool):
    """(heat, heat_of_flipped, paf, paf_of_flipped) at frame resolution, float32; PAFs None unless wanted."""
    bgr = _frames_to_bgr(frames).to(device)
    height, width = bgr.shape[2], bgr.shape[3]
    both = torch.cat([bgr, bgr.flip(3)])  # the frame and its mirror image, processed independently
    (pafs, heat), _ = net(preprocess_bgr(both, input_size))
    n = len(bgr)
    heat = to_frame_resolution(heat[:, :NUM_JOINTS + 1], height, width, input_size)
    pafs = to_frame_resolution(pafs, height, width, input_size) if want_pafs else None
    return heat[:n], heat[n:], (pafs[:n] if want_pafs else None), (pafs[n:] if want_pafs else None)


def average_flipped_heatmaps(heat: torch.Tensor, heat_flipped: torch.Tensor) -> torch.Tensor:
    """(h + mirror(h_flip)[HEAT_FLIP]) / 2 in float64, channels first."""
    perm = torch.as_tensor(HEAT_FLIP[:heat.shape[1]], device=heat.device)
    return (heat.double() + heat_flipped.flip(-1)[:, perm].double()) / 2.0


def average_flipped_pafs(pafs: torch.Tensor, pafs_flipped: torch.Tensor) -> torch.Tensor:
    """(p + mirror(p_flip with x negated)[PAF_FLIP]) / 2 in float64, channels first."""
    sign = torch.ones(len(PAF_FLIP), dtype=torch.float64, device=pafs.device)
    sign[0::2] = -1.0
    perm = torch.as_tensor(PAF_FLIP, device=pafs.device)
    flipped = pafs_flipped.flip(-1).double() * sign[:, None, None]
    return (pafs.double() + flipped[:, perm]) / 2.0


def heatmaps_and_pafs(net, frames, device=None, input_size: int = INPUT_SIZE):
    """Flip-averaged heatmaps (N, 19, H, W) and PAFs (N, 38, H, W), float64, for uint8 RGB frames (N, H, W, 3).

    Channels-first versions of get_outputs + handle_paf_and_heat's arrays (which are (H, W, C)). The whole
    batch runs through ``net`` at once (2N images); ``input_size`` is 368 upstream (other values: tests).
    """
    device = next(net.parameters()).device if device is None else device
    h, hf, p, pf = _network_maps(net, frames, device, input_size, True)
    return average_flipped_heatmaps(h, hf), average_flipped_pafs(p, pf)


def heatmaps(net, frames, device=None, input_size: int = INPUT_SIZE) -> torch.Tensor:
    """Flip-averaged heatmaps of the 18 joints (N, 18, H, W) float64 (no PAF resampling)."""
    device = next(net.parameters()).device if device is None else device
    h, hf, _, _ = _network_maps(net, frames, device, input_size, False)
    return average_flipped_heatmaps(h[:, :NUM_JOINTS], hf[:, :NUM_JOINTS])


# ----------------------------------------------------------------------------------------------------------
# Peaks and the per-frame (18, 2) value
# ----------------------------------------------------------------------------------------------------------
def peak_mask(heat: torch.Tensor, threshold: float = PEAK_THRESHOLD) -> torch.Tensor:
    """find_peaks: value >= each in-image 4-neighbour (maximum_filter, cross footprint) and value > thre1."""
    pad = torch.nn.functional.pad(heat, (1, 1, 1, 1), value=float("-inf"))
    centre = pad[..., 1:-1, 1:-1]
    mask = centre > threshold
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        mask &= centre >= pad[..., dy:dy + heat.shape[-2], dx:dx + heat.shape[-1]]
    return mask


def decode_peaks(heat, threshold: float = PEAK_THRESHOLD) -> torch.Tensor:
    """(N, >=18, H, W) flip-averaged heatmaps -> (N, 18, 2) float64 (x, y) as extract.py stores them.

    Per joint type: the last peak in row-major order, moved to the argmax (first in row-major order) of
    the 5x5 window around it clipped to the map; -1 for a type without peaks.
    """
    heat = torch.as_tensor(heat)[:, :NUM_JOINTS]
    if heat.dim() != 4 or heat.shape[1] != NUM_JOINTS:
        raise ValueError(f"heatmaps must have shape (N, {NUM_JOINTS}+, H, W), got {tuple(heat.shape)}")
    n, j, h, w = heat.shape
    mask = peak_mask(heat, threshold).reshape(n, j, h * w)
    found = mask.any(dim=-1)
    last = h * w - 1 - mask.flip(-1).to(torch.uint8).argmax(dim=-1)  # flat index of the last peak
    py, px = last // w, last % w
    r = REFINE_RADIUS
    pad = torch.nn.functional.pad(heat, (r, r, r, r), value=float("-inf")).reshape(n, j, -1)
    offs = torch.arange(-r, r + 1, device=heat.device)
    wy = (py[..., None, None] + offs[:, None] + r)  # (n, j, 5, 1) rows in the padded map
    wx = (px[..., None, None] + offs[None, :] + r)  # (n, j, 1, 5)
    flat = (wy * (w + 2 * r) + wx).reshape(n, j, -1)
    best = torch.gather(pad, 2, flat).argmax(dim=-1)  # first maximum in row-major window order
    x = (px + best % (2 * r + 1) - r).double()
    y = (py + best // (2 * r + 1) - r).double()
    out = torch.stack([x, y], dim=-1)
    return torch.where(found[..., None], out, torch.full_like(out, -1.0))


def frame_values(decoded: torch.Tensor) -> list:
    """(N, 18, 2) -> list of per-frame float64 numpy arrays (18, 2), the pickle's ``value`` column."""
    arr = decoded.detach().to("cpu", torch.float64).numpy()
    return [np.array(a) for a in arr]


def check_frames(frames) -> Sequence:
    """Validated uint8 RGB batch (N, H, W, 3) as numpy or torch; raises UserError otherwise."""
    from animbench.errors import UserError

    shape = tuple(frames.shape) if hasattr(frames, "shape") else None
    if shape is None or len(shape) != 4 or shape[-1] != 3:
        raise UserError(f"frames must be an array of shape (N, H, W, 3) (RGB), got shape {shape}")
    dtype = frames.dtype
    if dtype not in (np.uint8, torch.uint8):
        raise UserError(f"frames must be uint8 RGB in [0, 255], got dtype {dtype}; convert with "
                        f"(255 * x).astype(np.uint8) or read the PNGs as uint8")
    if shape[1] < 1 or shape[2] < 1:
        raise UserError(f"frames have an empty spatial size {shape[1:3]}")
    return frames
