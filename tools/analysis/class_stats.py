"""Class pixel statistics of a segmentation source set, with RCS probabilities.

Prints a per-class table (pixels, frequency, #images with >= min_pixels,
rare class sampling probability) and saves a bar plot and a JSON of it.
The per-image statistics are computed in parallel and cached next to the
data (``<data_root>/.mmplugins_cache``), the same cache ``UDADataset`` uses.

Usage::

    # from a config: its train source set and rare_class_sampling settings
    python tools/analysis/class_stats.py configs/daformer_rcs.py
    # from a data folder in the demo layout (<dir>/train_source_gt/*.png)
    python tools/analysis/class_stats.py data/samsung_demo --min-pixels 100
    # from a folder of label maps
    python tools/analysis/class_stats.py data/labels --num-classes 19
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from _toolbox import load_config, setup_toolbox  # noqa: E402


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Class pixel statistics and rare class sampling '
        'probabilities of a segmentation (source) dataset')
    parser.add_argument('path', help='config file, or a data folder (demo '
                        'layout <dir>/<split>_gt/ or a folder of label maps)')
    parser.add_argument('--out-dir', default='work_dirs/class_stats',
                        help='where class_stats.png / .json go '
                        '(default: %(default)s)')
    parser.add_argument('--split', default='train_source',
                        help='data folder mode: label folder <split>_gt '
                        '(default: %(default)s)')
    parser.add_argument('--num-classes', type=int,
                        help='data folder mode: number of classes (default: '
                        'from SamsungCameraDADataset if registered, else '
                        'max label + 1)')
    parser.add_argument('--ignore-index', type=int, default=255)
    parser.add_argument('--class-temp', type=float,
                        help='RCS temperature (default: config or 0.01)')
    parser.add_argument('--min-pixels', type=int,
                        help='RCS min_pixels (default: config or 3000)')
    parser.add_argument('--nproc', type=int, help='processes (default: cores)')
    parser.add_argument('--no-cache', action='store_true',
                        help='do not read or write the statistics cache')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    return parser.parse_args(argv)


def _unwrap_source(ds_cfg):
    """(source dataset cfg, rare_class_sampling cfg) of a train dataset."""
    rcs = None
    while True:
        if 'source' in ds_cfg:  # UDADataset
            rcs = ds_cfg.get('rare_class_sampling') or rcs
            ds_cfg = ds_cfg['source']
        elif 'dataset' in ds_cfg:  # RepeatDataset, ClassBalancedDataset
            ds_cfg = ds_cfg['dataset']
        elif 'datasets' in ds_cfg:  # ConcatDataset: its first part
            ds_cfg = ds_cfg['datasets'][0]
        else:
            return ds_cfg, rcs


def stats_from_config(args):
    from mmengine.registry import init_default_scope
    cfg = load_config(args.path, args.cfg_options)
    scope = setup_toolbox(cfg)
    init_default_scope(scope or 'mmseg')
    from mmseg.registry import DATASETS

    from mmplugins.datasets.class_stats import compute_class_stats
    if 'train_dataloader' not in cfg:
        raise KeyError(f'config {args.path} has no train_dataloader')
    ds_cfg, rcs = _unwrap_source(cfg.train_dataloader.dataset.to_dict())
    ds_cfg = dict(ds_cfg, pipeline=[])  # labels are read directly
    dataset = DATASETS.build(ds_cfg)
    stats = compute_class_stats(dataset, nproc=args.nproc,
                                cache=not args.no_cache)
    return stats, dict(rcs or {})


def stats_from_dir(args):
    from mmplugins.datasets.class_stats import compute_class_stats
    root = args.path
    label_dir = osp.join(root, f'{args.split}_gt')
    if not osp.isdir(label_dir):
        label_dir = root
    paths = sorted(
        osp.join(label_dir, f) for f in os.listdir(label_dir)
        if f.lower().endswith('.png'))
    if not paths:
        raise FileNotFoundError(
            f'no label maps (*.png) in {label_dir} (nor in '
            f'{osp.join(root, args.split + "_gt")})')
    data_root = root if label_dir != root else None
    names = None
    num_classes = args.num_classes
    if num_classes is None:
        import mmplugins  # noqa: F401
        from mmseg.registry import DATASETS
        demo_cls = DATASETS.get('SamsungCameraDADataset')
        if demo_cls is not None and demo_cls.METAINFO.get('classes'):
            names = list(demo_cls.METAINFO['classes'])
            num_classes = len(names)
    if num_classes is None:
        # every value but ignore_index counts as a class, then trim
        probe = compute_class_stats(paths, 255 if args.ignore_index == 255
                                    else 256, args.ignore_index,
                                    args.nproc, cache=False)
        nz = probe.total_pixels.nonzero()[0]
        num_classes = int(nz.max()) + 1 if len(nz) else 1
    stats = compute_class_stats(paths, num_classes, args.ignore_index,
                                args.nproc, cache=not args.no_cache,
                                data_root=data_root)
    stats.class_names = names
    return stats, {}


def rcs_table(stats, class_temp, min_pixels):
    """Rows of the per-class table and an RCS note (None if all fine)."""
    import numpy as np

    from mmplugins.datasets.rare_class_sampling import (RareClassSampler,
                                                        rcs_class_probs)
    totals = stats.total_pixels
    freq = totals / max(int(totals.sum()), 1)
    n_img = (stats.counts >= min_pixels).sum(axis=0)
    note = None
    try:
        probs = RareClassSampler(
            stats.counts, class_temp=class_temp, min_pixels=min_pixels,
            class_names=stats.class_names).class_probs
    except ValueError as e:
        note = str(e)
        try:
            probs = rcs_class_probs(
                {c: int(n) for c, n in enumerate(totals)}, class_temp)
        except ValueError:
            probs = {c: 0.0 for c in range(stats.num_classes)}
    names = stats.class_names or [str(c) for c in range(stats.num_classes)]
    rows = [
        dict(id=c, name=names[c], pixels=int(totals[c]),
             frequency=float(freq[c]), images=int(n_img[c]),
             rcs_prob=float(probs[c])) for c in range(stats.num_classes)
    ]
    assert np.isfinite([r['rcs_prob'] for r in rows]).all()
    return rows, note


def save_plot(rows, path, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = [r['name'] for r in rows]
    x = range(len(rows))
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(max(6, 0.6 * len(rows)), 6), sharex=True)
    ax1.bar(x, [max(r['frequency'], 1e-12) for r in rows], color='tab:blue')
    ax1.set_yscale('log')
    ax1.set_ylabel('pixel frequency f_c')
    ax1.set_title(title)
    ax2.bar(x, [r['rcs_prob'] for r in rows], color='tab:orange')
    ax2.set_ylabel('RCS probability P(c)')
    ax2.set_xticks(list(x))
    ax2.set_xticklabels(names, rotation=45, ha='right')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    if osp.isfile(args.path):
        stats, rcs = stats_from_config(args)
    elif osp.isdir(args.path):
        stats, rcs = stats_from_dir(args)
    else:
        raise FileNotFoundError(f'no such config file or data folder: '
                                f'{args.path}')
    class_temp = args.class_temp if args.class_temp is not None else \
        rcs.get('class_temp', 0.01)
    min_pixels = args.min_pixels if args.min_pixels is not None else \
        rcs.get('min_pixels', 3000)
    rows, note = rcs_table(stats, class_temp, min_pixels)

    width = max([len(r['name']) for r in rows] + [5])
    print(f'{len(stats.paths)} label maps, {stats.num_classes} classes '
          f'(statistics: {stats.status}'
          + (f', cache {stats.cache_file}' if stats.cache_file else '') + ')')
    print(f'RCS: class_temp={class_temp}, min_pixels={min_pixels}')
    print(f'{"id":>3} {"class":<{width}} {"pixels":>12} {"freq":>8} '
          f'{"#img>=min":>9} {"rcs_prob":>8}')
    for r in rows:
        print(f'{r["id"]:>3} {r["name"]:<{width}} {r["pixels"]:>12d} '
              f'{r["frequency"]:>8.4f} {r["images"]:>9d} '
              f'{r["rcs_prob"]:>8.4f}')
    if note:
        print(f'note: {note}')

    os.makedirs(args.out_dir, exist_ok=True)
    png = osp.join(args.out_dir, 'class_stats.png')
    save_plot(rows, png, f'{osp.basename(osp.normpath(args.path))}: '
              f'T={class_temp}, min_pixels={min_pixels}')
    with open(osp.join(args.out_dir, 'class_stats.json'), 'w') as f:
        json.dump(dict(num_images=len(stats.paths), class_temp=class_temp,
                       min_pixels=min_pixels, status=stats.status,
                       note=note, classes=rows), f, indent=2)
    print(f'saved {png} and class_stats.json')


if __name__ == '__main__':
    main()
