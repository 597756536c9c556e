"""Scratch runner: pose-evaluation extract_body_id (1bc4cae) + layumi ft_net (2a5a656) on CPU, torch 2.13."""
import ast, hashlib, json, math, os, shutil, sys, zlib
from collections import OrderedDict
os.environ["OMP_NUM_THREADS"] = "1"
import numpy as np
import torch
torch.set_num_threads(1)

HERE = os.path.dirname(os.path.abspath(__file__))
TEST = os.environ.get("TEST_REID", "/work/main/tests/test_reid.py")  # the generator / frame functions
OUT = os.path.join(HERE, "out")

# --- shim 1: torchvision 0.28.0 wheel (a CUDA build) imported next to torch 2.13.0+cpu. Its _C extension
# does not load (tolerated by torchvision), but _meta_registrations.py registers fake kernels for
# torchvision::nms / ::qnms unconditionally, which needs the op schemas; define them (same schema as _C).
torch.library.define("torchvision::nms", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
torch.library.define("torchvision::qnms", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
import torchvision, torchvision.models, PIL, imageio, pandas, skimage
# --- shim 2: ft_net calls models.resnet50(pretrained=True) (an ImageNet download); every parameter and
# buffer is overwritten by the strict load_state_dict that follows, so build it with weights=None.
_resnet50 = torchvision.models.resnet50
torchvision.models.resnet50 = lambda pretrained=False, **kw: _resnet50(weights=None, **kw)
# --- shim 3: extract.py hard-codes CUDA. Tensor.cuda -> record the (3, 288, 144) transform output and
# return the tensor unchanged (CPU); Module.cuda -> no-op, or .eval() for the eval-BN variant run.
CAPTURED, MODE = [], {"eval": False}
def _tensor_cuda(self, *a, **k):
    CAPTURED.append(self.detach().clone())
    return self
def _module_cuda(self, *a, **k):
    if MODE["eval"]:
        self.eval()
    MODE["net"] = self
    return self
torch.Tensor.cuda = _tensor_cuda
torch.nn.Module.cuda = _module_cuda

# functions from the test file, verbatim
src = open(TEST).read()
ns = {"np": np, "torch": torch, "math": math, "zlib": zlib, "OrderedDict": OrderedDict}
for node in ast.parse(src).body:
    if isinstance(node, ast.FunctionDef) and node.name in ("reid_random_state", "make_frame"):
        exec(ast.get_source_segment(src, node), ns)

os.chdir(HERE)
sys.path.insert(0, HERE)
import extract
from reid_baseline.model import ft_net

os.makedirs(OUT, exist_ok=True)
net = ft_net(751)
keys = [[k, list(v.shape)] for k, v in net.state_dict().items()]
json.dump(keys, open(os.path.join(OUT, "official_state_dict_keys.json"), "w"))
state = ns["reid_random_state"](keys, seed=0)
torch.save(state, "reid_baseline/reid_model.pth")  # train.py's save_network: a plain state_dict

SPECS = [
    {"name": "astronaut_half", "image": "astronaut", "rows": [0, 512, 2], "cols": [0, 512, 2]},
    {"name": "astronaut_crop", "image": "astronaut", "rows": [0, 256, 1], "cols": [140, 396, 1]},
    {"name": "coffee_crop", "image": "coffee", "rows": [72, 328, 1], "cols": [172, 428, 1]},
    {"name": "coffee_full", "image": "coffee", "rows": [0, 400, 1], "cols": [0, 600, 1]},
]
frames = {s["name"]: ns["make_frame"](s) for s in SPECS}
for s in SPECS:
    s["shape"] = list(frames[s["name"]].shape)
    s["crc32"] = zlib.crc32(frames[s["name"]].tobytes())

# folder 1: Tai-Chi ground-truth layout, one png with the 256x256 frames side by side (--is_video)
for d in ("in_clip", "in_full"):
    shutil.rmtree(d, ignore_errors=True); os.makedirs(d)
imageio.imwrite("in_clip/clip.png", np.concatenate([frames[s["name"]] for s in SPECS[:3]], axis=1))
# folder 2: a single image (no --is_video), 400x600
imageio.imwrite("in_full/coffee.png", frames["coffee_full"])
runs = [("in_clip", True, (256, 256), SPECS[:3]), ("in_full", False, (400, 600), SPECS[3:])]

from util import frames2array
result = {"transform": [], "parity": [], "eval": []}
for folder, is_video, shape, specs in runs:
    video = frames2array(os.path.join(folder, os.listdir(folder)[0]), is_video, shape, 0)
    assert [zlib.crc32(np.ascontiguousarray(f).tobytes()) for f in video] == [s["crc32"] for s in specs]
    for mode in ("parity", "eval"):
        MODE["eval"] = mode == "eval"
        CAPTURED.clear()
        df = extract.extract_body_id(folder, is_video, shape, 0)
        assert MODE["net"].training == (mode == "parity")
        assert list(df["frame_number"]) == list(range(len(specs)))
        for v in df["value"]:
            assert isinstance(v, np.ndarray) and v.dtype == np.float32 and v.shape == (1, 2048), (type(v), v.dtype, v.shape)
        result[mode] += list(df["value"])
        if mode == "parity":
            result["transform"] += [t.numpy() for t in CAPTURED]
        else:
            assert all(torch.equal(a, torch.from_numpy(b)) for a, b in zip(CAPTURED, result["transform"][-len(specs):]))

np.savez_compressed(os.path.join(OUT, "upstream_outputs.npz"),
                    transform=np.stack(result["transform"]), feat_parity=np.stack(result["parity"]),
                    feat_eval=np.stack(result["eval"]))
versions = {"python": sys.version.split()[0], "torch": torch.__version__, "torchvision": torchvision.__version__,
            "pillow": PIL.__version__, "numpy": np.__version__, "imageio": imageio.__version__,
            "pandas": pandas.__version__, "scikit-image": skimage.__version__}
json.dump({"frames": SPECS, "versions": versions, "seed": 0,
           "weights_sha256": hashlib.sha256(open("reid_baseline/reid_model.pth", "rb").read()).hexdigest()},
          open(os.path.join(OUT, "fixture.json"), "w"), indent=1)
print(versions)
for m in ("parity", "eval"):
    f = np.stack(result[m])[:, 0]
    print(m, f.shape, f.mean(1), f.std(1), "pairwise sqL2:", [float(((f[0] - f[i]) ** 2).sum()) for i in range(1, len(f))])
