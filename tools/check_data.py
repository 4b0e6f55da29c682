"""Validate the datasets of a config before training on them.

    python tools/check_data.py configs/mic_dual_aug.py
    python tools/check_data.py configs/diet_det/stage1_diet.py --splits train
    python tools/check_data.py CONFIG --bad-list work_dirs/bad_files.txt

Builds the config's train / val / test datasets exactly as the Runner would
(same registry scope, ``custom_imports``), then reads every file once --
without running any pipeline or model -- and checks:

* every image is readable and complete (a truncated PNG/JPEG is an error);
* segmentation: the label map exists, is a single-channel 8-bit (or
  palette) PNG, has the image's size and holds only class ids ``0..C-1``
  or ``ignore_index``; a dataset whose root is in the wrong layout (e.g.
  SYNTHIA without ``RGB/``, ACDC not flattened or a condition missing)
  is reported with the dataset's own error naming the path;
* detection: the image size matches the annotation's, box labels are in
  ``0..C-1`` and boxes have positive area;
* classification: ``gt_label`` values are in ``0..C-1``;
* UDA (``UDADataset``): source and target class lists (the dataset refuses
  to build otherwise, the error is reported) and, with rare class sampling,
  the class statistics (no class may have 0 pixels in *every* image when
  RCS samples by class; an unreadable cache is recomputed).

Prints a summary table and exits with 1 and the list of bad files when
anything is wrong (0 otherwise). ``--bad-list`` writes the bad files, one
per line.
"""
import argparse
import os
import os.path as osp
import sys
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Tuple

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

#: problem kinds, in report order
KINDS = ('unreadable image', 'missing label', 'unreadable label',
         'size mismatch', 'label id out of range', 'bad box',
         'dataset error', 'class stats')


# ------------------------------------------------------------ file checks
def read_image_size(path: str) -> Tuple[int, int]:
    """``(h, w)`` of a fully decoded image; raises ``ValueError`` naming
    the file when it is missing, truncated or not an image."""
    from PIL import Image
    if not osp.isfile(path):
        raise ValueError(f'{path}: file does not exist')
    try:
        with Image.open(path) as im:
            im.load()  # decodes every byte: truncation raises here
            return im.size[1], im.size[0]
    except Exception as e:  # noqa: BLE001 - PIL raises many types
        raise ValueError(f'{path}: cannot decode ({type(e).__name__}: '
                         f'{e})') from e


def read_label(path: str) -> np.ndarray:
    """A label map as an ``(h, w)`` array of ids (palette PNGs give their
    indices); raises ``ValueError`` naming the file."""
    from PIL import Image
    if not osp.isfile(path):
        raise FileNotFoundError(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            arr = np.asarray(im)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f'{path}: cannot decode ({type(e).__name__}: '
                         f'{e})') from e
    expected = ('expected an 8-bit single-channel (mode L) or palette '
                '(mode P) PNG of class ids')
    if arr.ndim != 2:
        raise ValueError(f'{path}: label has shape {arr.shape} (mode '
                         f'{mode}); {expected} -- an original label that '
                         'was not converted to train ids (e.g. SYNTHIA: '
                         'tools/dataset_converters/synthia.py)?')
    if arr.dtype != np.uint8 and arr.dtype != bool and arr.size and \
            int(arr.max()) > 255:
        raise ValueError(f'{path}: label of mode {mode} holds values up to '
                         f'{int(arr.max())}; {expected} (mmseg casts labels '
                         'to uint8: these would wrap around)')
    return arr


def check_seg_item(info: dict, num_classes: int, ignore_index: int,
                   reduce_zero_label: bool = False,
                   needs_label: bool = True) -> List[Tuple[str, str, str]]:
    """Problems ``(kind, file, message)`` of one mmseg data item."""
    img = info.get('img_path')
    problems = []
    try:
        hw = read_image_size(img)
    except ValueError as e:
        return [('unreadable image', img, str(e))]
    seg = info.get('seg_map_path')
    if not seg:
        if needs_label:
            problems.append(('missing label', img,
                             f'{img}: no label map in the dataset'))
        return problems
    try:
        label = read_label(seg)
    except FileNotFoundError:
        return [('missing label', seg,
                 f'{seg}: label of {img} does not exist')]
    except ValueError as e:
        return [('unreadable label', seg, str(e))]
    if label.shape != hw:
        problems.append(('size mismatch', seg,
                         f'{seg}: label is {label.shape[0]}x{label.shape[1]}'
                         f' but its image {img} is {hw[0]}x{hw[1]}'))
    values = np.flatnonzero(np.bincount(label.ravel().astype(np.int64)))
    hi = num_classes + (1 if reduce_zero_label else 0)
    bad = [int(v) for v in values if v >= hi and v != ignore_index]
    if bad:
        problems.append((
            'label id out of range', seg,
            f'{seg}: ids {bad[:10]} outside 0..{hi - 1} (ignore_index '
            f'{ignore_index})'))
    return problems


def check_det_item(info: dict, num_classes: int) -> List[Tuple[str, str,
                                                                str]]:
    img = info.get('img_path')
    try:
        hw = read_image_size(img)
    except ValueError as e:
        return [('unreadable image', img, str(e))]
    problems = []
    if 'height' in info and 'width' in info and \
            (int(info['height']), int(info['width'])) != hw:
        problems.append(('size mismatch', img,
                         f'{img}: image is {hw[0]}x{hw[1]} but the '
                         f'annotation says {info["height"]}x{info["width"]}'))
    for inst in info.get('instances', []):
        lbl = inst.get('bbox_label')
        if lbl is not None and not 0 <= int(lbl) < num_classes:
            problems.append(('label id out of range', img,
                             f'{img}: bbox_label {lbl} outside '
                             f'0..{num_classes - 1}'))
        box = inst.get('bbox')
        if box is not None and (box[2] <= box[0] or box[3] <= box[1]):
            problems.append(('bad box', img, f'{img}: box {box} has no '
                             'area'))
    return problems


def check_cls_item(info: dict, num_classes: Optional[int]
                   ) -> List[Tuple[str, str, str]]:
    img = info.get('img_path')
    try:
        read_image_size(img)
    except ValueError as e:
        return [('unreadable image', img, str(e))]
    lbl = info.get('gt_label')
    if lbl is None or num_classes is None:
        return []
    vals = np.atleast_1d(np.asarray(lbl)).ravel().tolist()
    bad = [v for v in vals if not 0 <= int(v) < num_classes]
    if bad:
        return [('label id out of range', img,
                 f'{img}: gt_label {bad} outside 0..{num_classes - 1}')]
    return []


# --------------------------------------------------------- dataset checks
def _kind_of(dataset) -> str:
    mod = type(dataset).__module__
    if hasattr(dataset, 'source') and hasattr(dataset, 'target'):
        return 'uda'
    for name in ('mmseg', 'mmdet', 'mmyolo', 'mmpretrain'):
        if mod.startswith(name):
            return {'mmseg': 'seg', 'mmdet': 'det', 'mmyolo': 'det',
                    'mmpretrain': 'cls'}[name]
    try:
        from mmseg.datasets import BaseSegDataset
        if isinstance(dataset, BaseSegDataset):
            return 'seg'
    except ImportError:
        pass
    try:
        from mmdet.datasets import BaseDetDataset
        if isinstance(dataset, BaseDetDataset):
            return 'det'
    except ImportError:
        pass
    return 'cls'


def _unwrap(dataset):
    """Concat / repeat wrappers -> their datasets."""
    if hasattr(dataset, 'datasets'):
        out = []
        for d in dataset.datasets:
            out += _unwrap(d)
        return out
    if hasattr(dataset, 'dataset') and not hasattr(dataset, 'data_list'):
        return _unwrap(dataset.dataset)
    return [dataset]


def check_dataset(dataset, name: str, max_items: Optional[int] = None,
                  needs_label: bool = True) -> dict:
    """Check one built dataset; returns a report dict."""
    kind = _kind_of(dataset)
    report = dict(name=name, kind=kind, items=0, problems=[])
    if kind == 'uda':
        subs = [check_dataset(dataset.source, f'{name}.source', max_items),
                check_dataset(dataset.target, f'{name}.target', max_items,
                              needs_label=False)]
        for sub in subs:
            report['items'] += sub['items']
            report['problems'] += sub['problems']
        if getattr(dataset, 'rcs', None) is not None:
            report['problems'] += check_class_stats(dataset, name)
        return report
    for ds in _unwrap(dataset):
        if hasattr(ds, 'full_init'):
            ds.full_init()
        classes = (getattr(ds, 'metainfo', None) or {}).get('classes')
        num_classes = len(classes) if classes is not None else None
        n = len(ds) if max_items is None else min(len(ds), max_items)
        for i in range(n):
            info = ds.get_data_info(i)
            if kind == 'seg':
                probs = check_seg_item(
                    info, num_classes, getattr(ds, 'ignore_index', 255),
                    getattr(ds, 'reduce_zero_label', False),
                    needs_label=needs_label and not getattr(
                        ds, 'test_mode', False) or bool(
                            info.get('seg_map_path')))
            elif kind == 'det':
                probs = check_det_item(info, num_classes)
            else:
                probs = check_cls_item(info, num_classes)
            report['problems'] += probs
        report['items'] += n
    return report


def check_class_stats(dataset, name: str) -> List[Tuple[str, str, str]]:
    """Rare class sampling needs, for every class it may pick, images that
    hold at least ``min_pixels`` of it."""
    stats = dataset.get_class_stats()
    counts = np.asarray(stats.counts)
    where = getattr(stats, 'cache_file', None) or name
    if counts.ndim != 2 or counts.shape[0] != len(dataset.source):
        return [('class stats', str(where),
                 f'{where}: class statistics of shape {counts.shape} for '
                 f'{len(dataset.source)} source images')]
    if counts.sum() == 0:
        return [('class stats', str(where),
                 f'{where}: class statistics are all zero: no source label '
                 'holds any class pixel')]
    return []


def build_datasets(cfg, splits) -> Dict[str, object]:
    from mmengine.registry import DATASETS, DefaultScope, init_default_scope
    scope = cfg.get('default_scope')
    if scope is not None:
        init_default_scope(scope)
    out = {}
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        with DefaultScope.overwrite_default_scope(scope):
            try:
                out[split] = DATASETS.build(loader['dataset'])
            except Exception as e:  # noqa: BLE001 - reported per split
                out[split] = e
                # a UDA pair that fails as a whole (class lists, class
                # statistics of a bad label): still check both sides
                ds_cfg = loader['dataset']
                if isinstance(ds_cfg, dict) and 'source' in ds_cfg and \
                        'target' in ds_cfg:
                    from mmplugins.datasets.uda_dataset import UDADataset
                    for side in ('source', 'target'):
                        try:
                            # target.crop_pseudo_margins is UDADataset's key
                            out[f'{split}.{side}'] = DATASETS.build(
                                UDADataset._with_pseudo_margins(
                                    ds_cfg[side], side))
                        except Exception as e2:  # noqa: BLE001
                            out[f'{split}.{side}'] = e2
    return out


def run(cfg, splits=('train', 'val', 'test'),
        max_items: Optional[int] = None) -> List[dict]:
    """Build and check the datasets of ``cfg``; one report per split."""
    reports = []
    seen = set()
    for split, ds in build_datasets(cfg, splits).items():
        if isinstance(ds, Exception):
            reports.append(dict(name=split, kind='?', items=0, problems=[
                ('dataset error', split,
                 f'{split} dataset cannot be built: {type(ds).__name__}: '
                 f'{ds}')]))
            continue
        # a wrapper that only changes how mix transforms pick partners:
        # check the dataset it wraps
        from mmplugins.datasets.subset_mix_dataset import SubsetMixDataset
        if isinstance(ds, SubsetMixDataset):
            ds = ds.dataset
        key = repr(ds)
        if key in seen:  # test_dataloader = val_dataloader
            continue
        seen.add(key)
        reports.append(check_dataset(ds, split, max_items,
                                     needs_label=not split.endswith(
                                         '.target')))
    return reports


def format_reports(reports: List[dict]) -> str:
    head = ['split', 'kind', 'items', 'bad'] + [
        k for k in KINDS if any(p[0] == k for r in reports
                                for p in r['problems'])]
    rows = []
    for r in reports:
        c = Counter(p[0] for p in r['problems'])
        bad_files = len({p[1] for p in r['problems']})
        rows.append([r['name'], r['kind'], str(r['items']), str(bad_files)]
                    + [str(c.get(k, 0)) for k in head[4:]])
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = '  '.join(f'{{:<{w}}}' for w in widths)
    lines = [fmt.format(*head), fmt.format(*['-' * w for w in widths])]
    lines += [fmt.format(*row) for row in rows]
    return '\n'.join(lines)


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description='Validate the datasets of a '
                                'config (images, labels, class ids)')
    p.add_argument('config')
    p.add_argument('--splits', nargs='+', default=['train', 'val', 'test'],
                   choices=['train', 'val', 'test'])
    p.add_argument('--max-items', type=int, default=None,
                   help='check at most this many items per dataset')
    p.add_argument('--bad-list', default=None,
                   help='write the bad files here, one per line')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from _toolbox import load_config, setup_toolbox
    cfg = load_config(args.config, args.cfg_options)
    setup_toolbox(cfg)
    reports = run(cfg, args.splits, args.max_items)
    print(format_reports(reports))
    problems = [p for r in reports for p in r['problems']]
    if args.bad_list:
        os.makedirs(osp.dirname(osp.abspath(args.bad_list)), exist_ok=True)
        with open(args.bad_list, 'w') as f:
            f.writelines(f'{b}\n' for b in sorted(
                {p[1] for p in problems if p[0] != 'dataset error'}))
    if not problems:
        print(f'OK: {sum(r["items"] for r in reports)} items checked, no '
              'problem found')
        return 0
    by_kind = defaultdict(list)
    for p in problems:
        by_kind[p[0]].append(p[2])
    print(f'\n{len(problems)} problem(s) in '
          f'{len({p[1] for p in problems})} file(s):')
    for kind in KINDS:
        for msg in by_kind.get(kind, [])[:20]:
            print(f'  [{kind}] {msg}')
        if len(by_kind.get(kind, [])) > 20:
            print(f'  [{kind}] ... {len(by_kind[kind]) - 20} more')
    return 1


if __name__ == '__main__':
    sys.exit(main())
