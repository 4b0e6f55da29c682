"""The 2023 Samsung camera-invariant domain adaptation challenge dataset.

Layout of the challenge data (and of the synthetic demo made by
``tools/make_demo_data.py``, which is a small instance of it)::

    data/samsung_camera/
    ├── train_source_image/TRAIN_SOURCE_0000.png   # pinhole, labelled
    ├── train_source_gt/TRAIN_SOURCE_0000.png
    ├── val_source_image/  val_source_gt/
    ├── train_target_image/TRAIN_TARGET_0000.png   # fisheye, unlabelled
    ├── val_target_image/  val_target_gt/          # fisheye, labelled (eval)
    ├── test_image/TEST_0000.png
    ├── train_source.csv  val_source.csv           # id,img_path,gt_path
    └── train_target.csv  val_target.csv  test.csv # id,img_path[,gt_path]

CSV paths are relative to the folder holding the CSV
(``./train_source_image/TRAIN_SOURCE_0000.png``). Labels are uint8 PNGs with
ids ``0..11`` (:data:`CLASSES`) and ``255`` for background / ignored pixels,
which includes the black corners outside the fisheye image circle.
"""
import csv
import os.path as osp
from typing import List, Optional

from mmengine import fileio
from mmseg.datasets import BaseSegDataset

from mmplugins.registry import register_module

#: The challenge's 12 classes, in label-id order.
CLASSES = ('Road', 'Sidewalk', 'Construction', 'Fence', 'Pole',
           'Traffic Light', 'Traffic Sign', 'Nature', 'Sky', 'Person',
           'Rider', 'Car')

#: Cityscapes colours of the matching Cityscapes classes (road, sidewalk,
#: building, fence, pole, traffic light, traffic sign, vegetation, sky,
#: person, rider, car), so visualisations read like Cityscapes ones.
PALETTE = [[128, 64, 128], [244, 35, 232], [70, 70, 70], [190, 153, 153],
           [153, 153, 153], [250, 170, 30], [220, 220, 0], [107, 142, 35],
           [70, 130, 180], [220, 20, 60], [255, 0, 0], [0, 0, 142]]


def read_challenge_csv(csv_path: str) -> List[dict]:
    """Read a challenge index CSV into a list of ``{column: value}`` rows.

    Args:
        csv_path (str): ``train_source.csv``-style file with a header line
            holding at least ``id`` and ``img_path`` (``gt_path`` optional).

    Returns:
        list[dict]: One dict per data row, keys = the header's columns.

    Raises:
        FileNotFoundError: ``csv_path`` is not a file.
        ValueError: the header misses ``id`` or ``img_path``, a row has a
            different number of fields, or the file has no data row.
    """
    if not osp.isfile(csv_path):
        raise FileNotFoundError(
            f'challenge CSV not found: {csv_path} (expected a file with the '
            f'header "id,img_path[,gt_path]")')
    with open(csv_path, newline='') as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f'{csv_path} is empty; expected the header '
                             f'"id,img_path[,gt_path]" and one row per image')
        header = [h.strip() for h in header]
        missing = [c for c in ('id', 'img_path') if c not in header]
        if missing:
            raise ValueError(
                f'{csv_path}: header {header} misses the column(s) {missing};'
                f' expected "id,img_path" or "id,img_path,gt_path"')
        rows = []
        for line_no, fields in enumerate(reader, start=2):
            if not fields:
                continue
            if len(fields) != len(header):
                raise ValueError(
                    f'{csv_path}:{line_no}: {len(fields)} fields {fields} '
                    f'but the header has {len(header)} columns {header}')
            rows.append(dict(zip(header, (v.strip() for v in fields))))
    if not rows:
        raise ValueError(f'{csv_path} has a header but no data rows')
    return rows


@register_module('datasets', toolboxes=('mmseg', ))
class SamsungCameraDADataset(BaseSegDataset):
    """Samsung camera-invariant DA challenge data (source or target split).

    Two ways to index a split, as the challenge ships both:

    * **folder scan** (mmseg style): ``data_prefix=dict(img_path=
      'train_source_image', seg_map_path='train_source_gt')``; every
      ``*.png`` under ``img_path`` is an image and its label is the file of
      the same name under ``seg_map_path``. Leave ``seg_map_path`` out for an
      unlabelled split (``train_target_image``, ``test_image``).
    * **challenge CSV**: ``ann_file='train_source.csv'`` (joined with
      ``data_root`` when relative). ``img_path`` / ``gt_path`` of each row
      are resolved relative to the CSV's folder; a CSV without a ``gt_path``
      column (``train_target.csv``, ``test.csv``) gives an unlabelled split.
      ``data_prefix`` is not used then.

    Items of an unlabelled split have no ``seg_map_path`` key, so their
    pipeline must not contain ``LoadAnnotations``.

    Args:
        ann_file (str): Challenge CSV, or ``''`` (default) for a folder scan.
        data_root (str, optional): Root folder of the data; must exist when
            given.
        data_prefix (dict): ``img_path`` (required for a folder scan) and
            optional ``seg_map_path`` folders, relative to ``data_root``.
            Defaults to ``dict(img_path='')``.
        img_suffix (str): Image file suffix. Defaults to ``'.png'``.
        seg_map_suffix (str): Label file suffix. Defaults to ``'.png'``.
        check_files (bool): Check at construction that every listed image
            and label file exists (one ``stat`` per file). Defaults to True.
        **kwargs: Everything else of :class:`mmseg.datasets.BaseSegDataset`
            (``pipeline``, ``test_mode``, ``indices``, ...).
            ``reduce_zero_label`` is always False and ``ignore_index`` 255:
            label 0 is Road and 255 the challenge's background.

    Raises:
        FileNotFoundError: ``data_root``, a scanned folder, the CSV, or a
            listed file does not exist (the message names the path).
        ValueError: the CSV lacks the ``id`` / ``img_path`` columns, or a
            split has no image.
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self,
                 ann_file: str = '',
                 data_root: Optional[str] = None,
                 data_prefix: dict = dict(img_path=''),
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 check_files: bool = True,
                 **kwargs) -> None:
        for key, value in (('reduce_zero_label', False),
                           ('ignore_index', 255)):
            if kwargs.get(key, value) != value:
                raise ValueError(
                    f'SamsungCameraDADataset: {key} must be {value} (0 is '
                    f'Road, 255 the background), but got {kwargs[key]!r}')
            kwargs[key] = value
        if data_root is not None and not osp.isdir(data_root):
            raise FileNotFoundError(
                f'SamsungCameraDADataset: data_root {data_root!r} is not a '
                f'folder; make the demo with `python tools/make_demo_data.py '
                f'--out {data_root}` or point data_root at the challenge '
                f'data')
        self.check_files = check_files
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            **kwargs)

    def _item(self, img_path: str, seg_map_path: Optional[str]) -> dict:
        info = dict(img_path=img_path, label_map=self.label_map,
                    reduce_zero_label=False, seg_fields=[])
        if seg_map_path is not None:
            info['seg_map_path'] = seg_map_path
        return info

    def _load_csv(self) -> List[dict]:
        rows = read_challenge_csv(self.ann_file)
        root = osp.dirname(self.ann_file)
        data_list = []
        for row in rows:
            img = osp.normpath(osp.join(root, row['img_path']))
            gt = row.get('gt_path') or None
            if gt is not None:
                gt = osp.normpath(osp.join(root, gt))
            if self.check_files:
                for key, path in (('img_path', img), ('gt_path', gt)):
                    if path is not None and not osp.isfile(path):
                        raise FileNotFoundError(
                            f'{self.ann_file}: row id={row["id"]!r} has '
                            f'{key}={row[key]!r}, but {path} does not exist')
            data_list.append(self._item(img, gt))
        return data_list

    def _scan_dirs(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path')
        ann_dir = self.data_prefix.get('seg_map_path') or None
        for key, path in (('img_path', img_dir), ('seg_map_path', ann_dir)):
            if path is not None and not osp.isdir(path):
                raise FileNotFoundError(
                    f'SamsungCameraDADataset: data_prefix.{key} folder '
                    f'{path!r} does not exist')
        names = sorted(
            fileio.list_dir_or_file(img_dir, list_dir=False,
                                    suffix=self.img_suffix, recursive=True))
        if not names:
            raise ValueError(
                f'SamsungCameraDADataset: no "*{self.img_suffix}" image '
                f'under {img_dir!r}')
        data_list = []
        for name in names:
            gt = None
            if ann_dir is not None:
                stem = name[:-len(self.img_suffix)]
                gt = osp.join(ann_dir, stem + self.seg_map_suffix)
                if self.check_files and not osp.isfile(gt):
                    raise FileNotFoundError(
                        f'SamsungCameraDADataset: image '
                        f'{osp.join(img_dir, name)} has no label {gt}')
            data_list.append(self._item(osp.join(img_dir, name), gt))
        return data_list

    def load_data_list(self) -> List[dict]:
        """Index the split from the CSV (``ann_file``) or the folders."""
        if self.ann_file:
            return self._load_csv()
        return self._scan_dirs()
