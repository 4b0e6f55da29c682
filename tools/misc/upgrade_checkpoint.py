"""Rewrite a trusted mmengine checkpoint so the safe loader can resume it.

    python tools/misc/upgrade_checkpoint.py work_dirs/x/iter_4000.pth [--out NEW]

Checkpoints written by stock mmengine 0.10.x pickle function references
(``HistoryBuffer`` statistics) that ``torch.load(weights_only=True)`` -- the
default since torch 2.6 -- refuses. This loads the file ONCE with the full
pickle loader (only do it for files you trust) and saves it again with
mmplugins' fixed ``HistoryBuffer`` pickling. In place by default (a ``.bak``
copy is kept).
"""
import argparse
import os
import os.path as osp
import shutil
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint')
    parser.add_argument('--out', help='output path (default: in place)')
    args = parser.parse_args(argv)
    import torch

    import mmplugins  # noqa: F401  (patched HistoryBuffer pickling)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    state = torch.load(args.checkpoint, map_location='cpu', weights_only=False)
    out = args.out or args.checkpoint
    if out == args.checkpoint:
        shutil.copy2(args.checkpoint, args.checkpoint + '.bak')
    tmp = out + '.tmp'
    torch.save(state, tmp)
    os.replace(tmp, out)
    torch.load(out, map_location='cpu', weights_only=True)  # verify
    print(f'upgraded {args.checkpoint} -> {out} (safe-loadable)')


if __name__ == '__main__':
    main()
