"""Write the pose-evaluation parity inputs: pickles shaped like extract.py's output (see README.md).

Run with the interpreter whose pandas should write them (the fixtures were written by Python 3.6 with
pandas 0.23.4 / numpy 1.15.0, pose-evaluation's pinned versions):

    python make_fixtures.py OUT_DIR

Deterministic (fixed seeds). Python 3.6-compatible on purpose. Builds each table the way extract.py
does: a dict of lists per column -> pandas.DataFrame(dict).to_pickle(path), videos in an unsorted order.
"""
import os
import sys

import numpy as np
import pandas as pd


def table(rows):
    out = {'file_name': [], 'frame_number': [], 'value': []}
    for name, frame, value in rows:
        out['file_name'].append(name)
        out['frame_number'].append(frame)
        out['value'].append(value)
    return pd.DataFrame(out)


def save(rows, out_dir, name):
    table(rows).to_pickle(os.path.join(out_dir, name))


def face_pose(rng, out_dir):
    # (68, 2) int32 landmarks (face-alignment's int-truncated pixels at 256x256), some frames None
    videos = [('id10292#c.mp4', 5), ('id10001#a.mp4', 6), ('id10283#b.mp4', 4)]
    gen_none = {('id10001#a.mp4', 2), ('id10001#a.mp4', 5), ('id10292#c.mp4', 0), ('id10283#b.mp4', 3)}
    gt_none = {('id10283#b.mp4', 3)}  # also None in the generated table: cmp_kp.py skips it before touching GT
    gt_rows, gen_rows = [], []
    for name, n in videos:
        base = rng.randint(60, 190, size=(68, 2))
        for f in range(n):
            gt = (base + rng.randint(-6, 7, size=(68, 2))).astype(np.int32)
            gen = (gt + rng.randint(-9, 10, size=(68, 2))).astype(np.int32)
            gt_rows.append((name, f, None if (name, f) in gt_none else gt))
            gen_rows.append((name + '.png', f, None if (name, f) in gen_none else gen))
    rng.shuffle(gen_rows)  # row order must not matter
    save(gt_rows, out_dir, 'face_pose_gt.pkl')
    save(gen_rows, out_dir, 'face_pose_gen.pkl')


def unit(x):
    return (x / np.sqrt(np.sum(x ** 2) + 1e-6)).astype(np.float32)


def face_id(rng, out_dir):
    # (128,) float32 OpenFace embeddings, normalised
    videos = [('id10283#b.mp4', 4), ('id10001#a.mp4', 3), ('id10292#c.mp4', 4)]
    gt_rows, gen_rows = [], []
    for name, n in videos:
        ident = rng.randn(128)
        for f in range(n):
            gt = unit(ident + 0.2 * rng.randn(128))
            gen = unit(ident + 0.2 * rng.randn(128) + 0.3 * rng.randn(128))
            gt_rows.append((name, f, gt))
            gen_rows.append((name + '.png', f, gen))
    rng.shuffle(gen_rows)
    save(gt_rows, out_dir, 'face_id_gt.pkl')
    save(gen_rows, out_dir, 'face_id_gen.pkl')


def joints(rng, base, p_missing):
    value = np.round(base + rng.randn(18, 2) * 4.0)
    value[rng.rand(18) < p_missing] = -1
    return value  # float64, like extract.py's -np.ones((18, 2)) filled with rounded peaks


def body_pose(rng, out_dir):
    # (18, 2) float64 joints with -1 for a missing joint; one video longer than 32 frames (count_missing.py)
    videos = [('taichi_b.mp4', 6), ('taichi_a.mp4', 40)]
    gt_rows, gen_rows = [], []
    for name, n in videos:
        base = rng.randint(40, 216, size=(18, 2)).astype(float)
        for f in range(n):
            gt = joints(rng, base, 0.15)
            gen = joints(rng, base, 0.3)
            if (name, f) == ('taichi_a.mp4', 3):
                gt[:] = -1                      # GT has no joint: no MKR term, no AKD term
            if (name, f) == ('taichi_a.mp4', 7):
                gen[:] = -1                     # nothing detected: MKR term 1, no AKD term
            if (name, f) == ('taichi_b.mp4', 2):
                gen[~(gt[:, 0] == -1)] = -1     # only joints GT lacks: no AKD term, MKR term 1
                gen[gt[:, 0] == -1] = 100.0
            if (name, f) == ('taichi_a.mp4', 36):
                gt[:] = -1                      # >= 32: ignored by count_missing.py
            gt_rows.append((name, f, gt))
            gen_rows.append((name + '.png', f, gen))
    rng.shuffle(gen_rows)
    save(gt_rows, out_dir, 'body_pose_gt.pkl')
    save(gen_rows, out_dir, 'body_pose_gen.pkl')


def body_id(rng, out_dir):
    # (1, 2048) float32 re-id features (average-pooled ResNet-50 activations, unnormalised, >= 0)
    videos = [('taichi_b.mp4', 2), ('taichi_a.mp4', 2)]
    gt_rows, gen_rows = [], []
    for name, n in videos:
        ident = np.abs(rng.randn(1, 2048)) * 0.6
        for f in range(n):
            gt = np.maximum(ident + 0.1 * rng.randn(1, 2048), 0).astype(np.float32)
            gen = np.maximum(ident + 0.25 * rng.randn(1, 2048), 0).astype(np.float32)
            gt_rows.append((name, f, gt))
            gen_rows.append((name + '.png', f, gen))
    rng.shuffle(gen_rows)
    save(gt_rows, out_dir, 'body_id_gt.pkl')
    save(gen_rows, out_dir, 'body_id_gen.pkl')


def format_sample(out_dir):
    # a tiny table written by whatever pandas runs this, to test reading pickles of that era
    rows = [('b.mp4', 0, np.arange(136, dtype=np.int32).reshape(68, 2)), ('b.mp4', 1, None),
            ('a.mp4', 0, -np.ones((18, 2))), ('a.mp4', 1, np.linspace(0, 1, 128).astype(np.float32))]
    save(rows, out_dir, 'format_pandas-%s.pkl' % pd.__version__)


if __name__ == '__main__':
    out_dir = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == '--format-only':
        format_sample(out_dir)
    else:
        face_pose(np.random.RandomState(0), out_dir)
        face_id(np.random.RandomState(1), out_dir)
        body_pose(np.random.RandomState(2), out_dir)
        body_id(np.random.RandomState(3), out_dir)
        format_sample(out_dir)
