"""Write the synthetic mask-wearing demo dataset (no download).

Example::

    python tools/make_mask_demo_data.py --out data/mask_demo
    python tools/train.py configs/mask_cls/mask_label_head_mnv3_demo.py
"""
import argparse
import os.path as osp
import sys

_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/mask_demo',
                        help='output folder (default: data/mask_demo)')
    parser.add_argument('--num-persons', type=int, default=300,
                        help='persons of images/ (7 photos each)')
    parser.add_argument('--eval-persons', type=int, default=20,
                        help='persons of the unlabeled eval/ set')
    parser.add_argument('--size', type=int, default=64, help='image side')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--faces', default='flat',
                        choices=('flat', 'detectable'),
                        help="'detectable': faces MTCNN finds (FaceCrop)")
    parser.add_argument('--face-scale', type=float, default=1.0,
                        help='detectable faces smaller than the frame, at '
                        'random places (< 1)')
    parser.add_argument('--mislabel-persons', type=int, default=0,
                        help='persons recorded with a wrong label; the '
                        'corrections go to label_fixes.csv')
    parser.add_argument('--mislabel-kinds', nargs='+',
                        default=['gender', 'mask'],
                        choices=('gender', 'mask'))
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmplugins.datasets.demo.mask_demo import make_mask_demo
    counts = make_mask_demo(args.out, num_persons=args.num_persons,
                            eval_persons=args.eval_persons, size=args.size,
                            seed=args.seed, faces=args.faces,
                            face_scale=args.face_scale,
                            mislabel_persons=args.mislabel_persons,
                            mislabel_kinds=tuple(args.mislabel_kinds))
    print(f'wrote {counts["persons"]} persons / {counts["images"]} images '
          f'and {counts["eval_images"]} eval images to {args.out}')


if __name__ == '__main__':
    main()
