"""Generate the synthetic Samsung-challenge-layout demo dataset.

Example::

    python tools/make_demo_data.py --out data/samsung_demo
    python tools/make_demo_data.py --out /tmp/tiny --num-train-source 8 \\
        --num-val-source 2 --num-train-target 8 --num-val-target 2 \\
        --num-test 2 --height 64 --width 128

The same ``--seed`` and sizes always give byte-identical files.
"""
import argparse
import os.path as osp
import sys

# make `import mmplugins` work from a plain checkout (no `pip install -e .`)
_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write the synthetic domain-shift demo dataset in the '
        'layout of the 2023 Samsung camera-invariant DA challenge')
    parser.add_argument('--out', default='data/samsung_demo',
                        help='output folder (default: data/samsung_demo)')
    parser.add_argument('--seed', type=int, default=0, help='dataset seed')
    parser.add_argument('--num-train-source', type=int, default=200)
    parser.add_argument('--num-val-source', type=int, default=50)
    parser.add_argument('--num-train-target', type=int, default=200)
    parser.add_argument('--num-val-target', type=int, default=50)
    parser.add_argument('--num-test', type=int, default=50)
    parser.add_argument('--height', type=int, default=256)
    parser.add_argument('--width', type=int, default=512)
    parser.add_argument(
        '--workers', type=int, default=None,
        help='render processes (default: up to 8 CPUs; output identical)')
    return parser.parse_args(argv)


def format_summary(summary):
    lines = [f'wrote {summary["out_dir"]} '
             f'({summary["height"]}x{summary["width"]}, seed '
             f'{summary["seed"]}) in {summary["seconds"]:.1f} s']
    for split, n in summary['counts'].items():
        lines.append(f'  {split:<13} {n:5d} images   '
                     f'{osp.basename(summary["csv"][split])}')
    freq, pres = summary['class_freq'], summary['presence']
    lines.append(f'  {"class":<14} {"src px%":>8} {"tgt px%":>8} '
                 f'{"src img%":>9} {"tgt img%":>9}')
    for name in freq['source']:
        p_src = pres['source'].get(name)
        p_tgt = pres['target'].get(name)
        lines.append(
            f'  {name:<14} {100 * freq["source"][name]:8.2f} '
            f'{100 * freq["target"][name]:8.2f} '
            + (f'{100 * p_src:9.0f} {100 * p_tgt:9.0f}'
               if p_src is not None else ''))
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    from mmplugins.datasets.demo.samsung_demo import make_samsung_demo
    summary = make_samsung_demo(
        args.out,
        num_train_source=args.num_train_source,
        num_val_source=args.num_val_source,
        num_train_target=args.num_train_target,
        num_val_target=args.num_val_target,
        num_test=args.num_test,
        height=args.height,
        width=args.width,
        seed=args.seed,
        num_workers=args.workers)
    print(format_summary(summary))
    return summary


if __name__ == '__main__':
    main()
