"""Makes tests/data/openpose/{fork_outputs.npz,fixture.json} by running the fork's own code.

Run from a scratch directory OUTSIDE the repository (see README.md there for its layout: pose-evaluation's
extract.py and util.py at the top, the submodule's files under pose_estimation/, shims/matplotlib). Only this
driver is kept in the repository; the upstream code it imports is not."""
import ast, json, os, sys, shutil, platform, datetime, zlib
sys.path[:0] = ['/tmp/openpose-ref/shims', '/tmp/openpose-ref']
os.chdir('/tmp/openpose-ref')
import numpy as np, torch, cv2, scipy, skimage, imageio, pandas
torch.set_num_threads(1); cv2.setNumThreads(1)

# SHIM 1 (CPU only): the fork hard-codes .cuda(); make it a no-op.
torch.Tensor.cuda = lambda self, *a, **k: self
torch.nn.Module.cuda = lambda self, *a, **k: self

TEST = '/work/main/tests/test_openpose.py'
tree = ast.parse(open(TEST).read())
ns = {}
exec("import math, zlib\nfrom collections import OrderedDict\nimport numpy as np\nimport torch\n", ns)
for node in tree.body:
    if isinstance(node, ast.FunctionDef) and node.name in ('openpose_random_state', 'make_frame', 'synthetic_heatmaps'):
        exec(compile(ast.Module([node], []), TEST, 'exec'), ns)

import pose_estimation.evaluate.coco_eval as coco_eval
from pose_estimation.evaluate.coco_eval import get_outputs, handle_paf_and_heat
from pose_estimation.network.rtpose_vgg import get_model
from pose_estimation.network.post import decode_pose, NMS
from pose_estimation.network import im_transform
import extract

model = get_model('vgg19')
keys = [[k, list(v.shape)] for k, v in model.state_dict().items()]
OUT = os.environ.get('OUT', '/tmp/openpose-ref')
json.dump(keys, open(f'{OUT}/official_state_dict_keys.json', 'w'))
state = ns['openpose_random_state'](keys)
os.makedirs('pose_estimation/network/weight', exist_ok=True)
torch.save(state, 'pose_estimation/network/weight/pose_model.pth')
model.load_state_dict(torch.load('pose_estimation/network/weight/pose_model.pth'))  # as extract.py does
model = torch.nn.DataParallel(model).cuda(); model.float(); model.eval()

ORIG_GET_MULTIPLIER = coco_eval.get_multiplier
def set_input_size(size):
    # SHIM 2 (test cost only): get_multiplier with 368 replaced by `size` for the small variants.
    if size == 368:
        coco_eval.get_multiplier = ORIG_GET_MULTIPLIER
    else:
        coco_eval.get_multiplier = lambda img: [x * float(size) / float(img.shape[0]) for x in [1.]]

FRAMES = [
    {"name": "astronaut_256", "image": "astronaut", "rows": [0, 512, 2], "cols": [0, 512, 2], "input_size": 368},
    {"name": "portrait_down", "image": "astronaut", "rows": [0, 240, 1], "cols": [150, 330, 1], "input_size": 96},
    {"name": "landscape_odd", "image": "astronaut", "rows": [100, 301, 3], "cols": [0, 512, 3], "input_size": 88},
]
SUB = 4
out, meta = {}, {"frames": [], "subsample": SUB}
param = {'thre1': 0.1, 'thre2': 0.05, 'thre3': 0.5}
for spec in FRAMES:
    frame_rgb = ns['make_frame'](spec)
    set_input_size(spec['input_size'])
    # (a) extract.py itself, on a folder with this one frame as a PNG (frames2array, is_video=False)
    folder = f'/tmp/openpose-ref/in_{spec["name"]}'
    shutil.rmtree(folder, ignore_errors=True); os.makedirs(folder)
    imageio.imwrite(f'{folder}/{spec["name"]}.png', frame_rgb)
    df = extract.extract_body_pose(folder, False, None, 0)
    value = df['value'].iloc[0]
    # (b) the same steps as extract_body_pose, keeping the maps
    frame = frame_rgb[..., ::-1]
    multiplier = coco_eval.get_multiplier(frame)
    with torch.no_grad():
        orig_paf, orig_heat = get_outputs(multiplier, frame, model, 'rtpose')
        flipped_paf, flipped_heat = get_outputs(multiplier, frame[:, ::-1, :], model, 'rtpose')
        paf, heat = handle_paf_and_heat(orig_heat, flipped_heat, orig_paf, flipped_paf)
    _, _, joint_list, _ = decode_pose(frame, param, heat, paf)
    npeaks = [len(p) for p in NMS(param, heat, frame.shape[0] / float(heat.shape[0]))]
    jl = np.array(joint_list); tmp = -np.ones((18, 2))
    if len(jl): tmp[jl[:, -1].astype(int)] = jl[:, :2]
    assert np.array_equal(tmp, value) and value.dtype == np.float64 and value.shape == (18, 2)
    inp = multiplier[-1] * frame.shape[0]
    im_cropped, im_scale, real_shape = im_transform.crop_with_factor(frame, inp, factor=8, is_ceil=True)
    n = spec['name']
    out[f'heat_{n}'] = heat[::SUB, ::SUB].astype(np.float32)
    out[f'paf_{n}'] = paf[::SUB, ::SUB].astype(np.float32)
    out[f'value_{n}'] = value
    out[f'npeaks_{n}'] = np.array(npeaks)
    meta['frames'].append(dict(spec, shape=list(frame_rgb.shape), crc32=zlib.crc32(frame_rgb.tobytes()), heat_dtype=str(heat.dtype),
                               im_scale=float(im_scale), cropped_shape=list(im_cropped.shape),
                               real_shape=list(real_shape), n_joint_list=len(joint_list)))
    print(n, frame_rgb.shape, im_cropped.shape, real_shape, 'peaks', npeaks, '\n', value.T)
set_input_size(368)

# (c) the network alone on a small input (all 12 stage outputs)
x = torch.from_numpy(ns['make_frame']({"image": "astronaut", "rows": [0, 512, 8], "cols": [64, 448, 8]})[..., ::-1]
                     .astype(np.float32).transpose(2, 0, 1).copy())[None] / 256. - 0.5
with torch.no_grad():
    (p6, h6), stages = model(x)
out['net_input'] = x.numpy()
for i, s in enumerate(stages):
    out[f'net_stage{i}'] = s.numpy()

# (d) decode_pose + extract.py's post-processing on synthetic heatmaps
maps, _ = ns['synthetic_heatmaps']()
for i, hm in enumerate(maps):
    img = np.zeros(hm.shape[:2] + (3,), np.uint8)
    _, _, joint_list, _ = decode_pose(img, param, hm, np.zeros(hm.shape[:2] + (38,)))
    jl = np.array(joint_list); tmp = -np.ones((18, 2))
    if len(jl): tmp[jl[:, -1].astype(int)] = jl[:, :2]
    out[f'synth_value_{i}'] = tmp
    print('synthetic', i, len(joint_list), '\n', tmp.T)

# (e) the fork's flip permutations (local variables of handle_paf_and_heat), read with ast
for node in ast.parse(open('pose_estimation/evaluate/coco_eval.py').read()).body:
    if isinstance(node, ast.FunctionDef) and node.name == 'handle_paf_and_heat':
        for st in node.body:
            if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Name) and st.targets[0].id.startswith('swap'):
                meta[st.targets[0].id] = list(ast.literal_eval(st.value.args[0]))
meta['thresholds'] = param
meta['versions'] = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                    "opencv": cv2.__version__, "scipy": scipy.__version__, "scikit-image": skimage.__version__,
                    "imageio": imageio.__version__, "pandas": pandas.__version__}
meta['made'] = datetime.date.today().isoformat()
np.savez(f'{OUT}/fork_outputs.npz', **out)
json.dump(meta, open(f'{OUT}/fixture.json', 'w'), indent=1)
print('sizes', {k: v.nbytes for k, v in out.items() if v.nbytes > 10000})
