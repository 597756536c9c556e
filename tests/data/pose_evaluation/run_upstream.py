"""Run pose-evaluation's unmodified cmp scripts on the fixture pickles; write what they print to JSON.

    python run_upstream.py UPSTREAM_DIR OUT_JSON LABEL=PYTHON [LABEL=PYTHON ...]

UPSTREAM_DIR holds cmp_kp.py, cmp.py, cmp_with_missing.py and count_missing.py exactly as in the
pose-evaluation repository; each PYTHON is an interpreter with pandas/numpy to run them under. The
pickles are read from this script's folder. Stdlib only.
"""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = [  # (case, script, inputs)
    ('face_pose', 'cmp_kp.py', ['face_pose_gt.pkl', 'face_pose_gen.pkl']),
    ('face_id', 'cmp.py', ['face_id_gt.pkl', 'face_id_gen.pkl']),
    ('body_pose', 'cmp_with_missing.py', ['body_pose_gt.pkl', 'body_pose_gen.pkl']),
    ('body_id', 'cmp.py', ['body_id_gt.pkl', 'body_id_gen.pkl']),
    ('body_pose_count_missing_gt', 'count_missing.py', ['body_pose_gt.pkl']),
    ('body_pose_count_missing_gen', 'count_missing.py', ['body_pose_gen.pkl']),
]
LINE = re.compile(r'^(Average difference|Missing count): (\S+)$')


def main():
    upstream, out_json = sys.argv[1], sys.argv[2]
    pythons = [arg.split('=', 1) for arg in sys.argv[3:]]
    result = {'runs': {}}
    for label, python in pythons:
        env = subprocess.run([python, '-c', 'import sys, pandas, numpy; print(sys.version.split()[0], '
                              'pandas.__version__, numpy.__version__)'],
                             stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout.split()
        runs = {'python': env[0], 'pandas': env[1], 'numpy': env[2], 'cases': {}}
        for case, script, inputs in RUNS:
            cmd = [python, os.path.join(upstream, script)] + [os.path.join(HERE, name) for name in inputs]
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True, cwd=upstream)
            if proc.returncode != 0:
                raise SystemExit('%s %s failed:\n%s' % (label, script, proc.stderr))
            printed = [line for line in proc.stdout.splitlines() if LINE.match(line)]
            runs['cases'][case] = {
                'command': ' '.join([script] + inputs),
                'printed': printed,
                'values': {LINE.match(line).group(1): float(LINE.match(line).group(2)) for line in printed},
            }
        result['runs'][label] = runs
    with open(out_json, 'w') as fh:
        json.dump(result, fh, indent=1, sort_keys=True)
        fh.write('\n')


if __name__ == '__main__':
    main()
