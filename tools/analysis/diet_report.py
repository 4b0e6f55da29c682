"""Class counts of the full training set vs the diet subset of a config.

Builds the config's training dataset and its ``DietSampler`` exactly as the
Runner would, prints the per-rule counts and a per-class table (full, diet,
kept %), and saves a bar plot (PNG, log scale) and a JSON of the numbers.

Usage::

    python tools/analysis/diet_report.py configs/diet_det/stage1_diet.py
    python tools/analysis/diet_report.py configs/diet_det/stage1_diet.py \
        --out-dir work_dirs/diet_report \
        --cfg-options train_dataloader.dataset.data_root=data/other/
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
        description='Class counts of the full training set vs the diet '
        'subset chosen by the config\'s DietSampler')
    parser.add_argument('config', help='config with a DietSampler in '
                        'train_dataloader.sampler')
    parser.add_argument('--out-dir', default=None,
                        help='where diet_report.png / .json go (default: '
                        'work_dirs/<config name>/diet_report)')
    parser.add_argument('--no-plot', action='store_true',
                        help='skip the PNG (no matplotlib needed)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    return parser.parse_args(argv)


def build_diet_sampler(cfg):
    """The training dataset and sampler, built as the Runner builds them."""
    from mmengine.registry import DATA_SAMPLERS, DATASETS, DefaultScope
    sampler_cfg = cfg.train_dataloader.get('sampler', None)
    if not sampler_cfg or sampler_cfg.get('type') != 'DietSampler':
        raise ValueError(
            f'{cfg.filename}: train_dataloader.sampler must be a '
            f'DietSampler, got {sampler_cfg}')
    scope = cfg.get('default_scope', None)
    with DefaultScope.overwrite_default_scope(scope):
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        # the table below replaces the sampler's own log
        sampler = DATA_SAMPLERS.build(
            dict(sampler_cfg, verbose=False),
            default_args=dict(dataset=dataset, seed=0))
    return dataset, sampler


def format_report(rep):
    lines = [f'diet subset: {rep["subset_size"]} of {rep["num_images"]} '
             f'images ({rep["source"]}); epoch_parts={rep["epoch_parts"]} '
             f'-> {rep["epoch_size"]} images per epoch', 'rules:']
    for i, r in enumerate(rep['rules']):
        lines.append(f'  {i + 1}. {r["rule"]}: matched {r["matched"]}, kept '
                     f'{r["kept"]}')
    width = max(len(c) for c in rep['classes'] + ['class']) + 2
    lines.append(f'{"class":<{width}}{"full":>12}{"diet":>12}{"kept %":>9}'
                 f'{"full %":>9}{"diet %":>9}')
    tot_full, tot_diet = sum(rep['full']), sum(rep['diet'])
    for c, f, d in zip(rep['classes'], rep['full'], rep['diet']):
        lines.append(
            f'{c:<{width}}{f:>12d}{d:>12d}{100 * d / max(f, 1):>9.1f}'
            f'{100 * f / max(tot_full, 1):>9.1f}'
            f'{100 * d / max(tot_diet, 1):>9.1f}')
    lines.append(f'{"total":<{width}}{tot_full:>12d}{tot_diet:>12d}'
                 f'{100 * tot_diet / max(tot_full, 1):>9.1f}')
    lines.append(f'(counts are {rep["unit"]})')
    return '\n'.join(lines)


def plot_report(rep, path, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    x = np.arange(len(rep['classes']))
    fig, ax = plt.subplots(figsize=(1.2 * len(x) + 2, 4))
    ax.bar(x - 0.2, rep['full'], 0.4, label=f'full ({rep["num_images"]} '
           'images)', color='#8c8c8c')
    ax.bar(x + 0.2, rep['diet'], 0.4, label=f'diet ({rep["subset_size"]} '
           'images)', color='#d62728')
    for i, (f, d) in enumerate(zip(rep['full'], rep['diet'])):
        ax.text(i + 0.2, max(d, 1), f'{100 * d / max(f, 1):.0f}%',
                ha='center', va='bottom', fontsize=8)
    ax.set_yscale('log')
    ax.set_xticks(x)
    ax.set_xticklabels(rep['classes'], rotation=30, ha='right')
    ax.set_ylabel(rep['unit'])
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    setup_toolbox(cfg)
    _, sampler = build_diet_sampler(cfg)
    rep = sampler.report()
    print(format_report(rep))
    name = osp.splitext(osp.basename(args.config))[0]
    out_dir = args.out_dir or osp.join('work_dirs', name, 'diet_report')
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'diet_report.json'), 'w') as f:
        json.dump(rep, f, indent=2)
    print(f'wrote {osp.join(out_dir, "diet_report.json")}')
    if not args.no_plot:
        png = osp.join(out_dir, 'diet_report.png')
        plot_report(rep, png, f'{name}: class counts, full vs diet')
        print(f'wrote {png}')
    return rep


if __name__ == '__main__':
    main()
