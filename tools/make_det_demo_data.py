"""Generate the driver-inattention detection demo data (COCO format).

Deterministic, no downloads::

    python tools/make_det_demo_data.py --out data/driver_demo
    python tools/train.py configs/diet_det/stage1_diet.py

See :mod:`mmplugins.datasets.demo.driver_demo` for what the images hold.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write the driver-inattention detection demo dataset')
    parser.add_argument('--out', default='data/driver_demo',
                        help='output folder (default: data/driver_demo)')
    parser.add_argument('--num-train', type=int, default=600)
    parser.add_argument('--num-val', type=int, default=200)
    parser.add_argument('--size', type=int, default=192,
                        help='square image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmplugins.datasets.demo.driver_demo import make_driver_demo
    summary = make_driver_demo(args.out, num_train=args.num_train,
                               num_val=args.num_val, size=args.size,
                               seed=args.seed)
    for split in ('train', 'val'):
        s = summary[split]
        print(f'{split}: {s["num_images"]} images -> {s["ann_file"]}')
        print('  instances: ' + json.dumps(s['instances']))
    return summary


if __name__ == '__main__':
    main()
