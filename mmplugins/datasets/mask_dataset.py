"""Mask-wearing competition dataset with person-wise stratified folds.

Layout (the competition's ``train/`` folder)::

    data_root/images/{id}_{gender}_{race}_{age}/
        mask1..mask5.{jpg,jpeg,png}   -> mask 0 (wear)
        incorrect_mask.{ext}          -> mask 1 (incorrect)
        normal.{ext}                  -> mask 2 (not wear)

Every person has 7 photos. The common baseline's image-wise split put the
same face on both sides of train/val, so validation F1 was far above the
leaderboard's. Its person split does not leak identities (the persons drawn
for val are removed from train) but draws them *with replacement*, so val
gets fewer persons than asked and is not stratified (see
docs/classification.md). Here folds are made of *persons*, stratified by the
person's gender x age class, and no person is on both sides of a fold.
"""
import csv
import logging
import os
import os.path as osp
from collections import Counter, defaultdict
from typing import Dict, List, Optional

import numpy as np

from mmplugins.models.heads.mask_label import (AGE_BOUNDS, AGE_NAMES,
                                               GENDER_NAMES, MASK_NAMES,
                                               age_to_label, check_age_bins,
                                               class_names, decode, encode)
from mmplugins.registry import register_module

try:
    from mmpretrain.datasets import BaseDataset
except ImportError:  # mmpretrain is optional: the dataset is not registered
    from mmengine.dataset import BaseDataset

#: image stem -> mask class
MASK_IMAGE_STEMS: Dict[str, int] = {
    **{f'mask{i}': 0
       for i in range(1, 6)}, 'incorrect_mask': 1,
    'normal': 2
}
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
GENDERS = {'male': 0, 'female': 1}
SPLITS = ('train', 'val', 'all')

# ---------------------------------------------------------------------------
# reference semantics: parsing and person-wise folds
# ---------------------------------------------------------------------------


def parse_person_dir(name: str, path: Optional[str] = None) -> dict:
    """``'{id}_{gender}_{race}_{age}'`` -> dict of the person's attributes.

    Raises:
        ValueError: naming ``path`` (or ``name``) when the name does not have
            four ``_``-separated fields, the gender is not male/female or the
            age is not a non-negative integer.
    """
    where = path or name
    parts = name.split('_')
    if len(parts) != 4 or not parts[0]:
        raise ValueError(
            f'{where}: person folder name must be '
            f'"{{id}}_{{gender}}_{{race}}_{{age}}" (e.g. '
            f'"000001_female_Asian_45"), but got {name!r}')
    pid, gender, race, age = parts
    if gender.lower() not in GENDERS:
        raise ValueError(f'{where}: gender must be one of {sorted(GENDERS)}, '
                         f'but got {gender!r}')
    if not age.isdigit():
        raise ValueError(f'{where}: age must be a non-negative integer, but '
                         f'got {age!r}')
    age = int(age)
    gender_label = GENDERS[gender.lower()]
    return dict(
        person_id=pid,
        gender=gender.lower(),
        race=race,
        age=age,
        gender_label=gender_label,
        age_label=age_to_label(age),
        # the stratum of the person: gender x age class (0..5)
        person_class=gender_label * 3 + age_to_label(age))


def parse_image_name(filename: str, path: Optional[str] = None) -> int:
    """Mask class (0 wear, 1 incorrect, 2 not wear) of an image file name.

    Raises:
        ValueError: naming ``path`` for an unknown stem or extension.
    """
    stem, ext = osp.splitext(filename)
    if ext.lower() not in IMAGE_EXTENSIONS or stem not in MASK_IMAGE_STEMS:
        raise ValueError(
            f'{path or filename}: unknown image name; expected '
            f'{{{",".join(MASK_IMAGE_STEMS)}}} with an extension in '
            f'{IMAGE_EXTENSIONS}')
    return MASK_IMAGE_STEMS[stem]


def stratified_person_folds(person_classes: Dict[str, int],
                            num_folds: int,
                            seed: int = 0) -> Dict[str, int]:
    """Assign every person to one of ``num_folds`` folds, per stratum.

    Persons of each class (stratum) are shuffled with ``seed`` and dealt
    round-robin; the dealing position carries over from one stratum to the
    next, so fold sizes differ by at most one person and every stratum is
    split as evenly as possible (a stratified *group* k-fold where a group
    is a person and all its images share the person's fold).

    Args:
        person_classes (dict): ``{person_id: stratum}``.
        num_folds (int): Number of folds (>= 2).
        seed (int): Shuffle seed.

    Returns:
        dict: ``{person_id: fold}``.
    """
    if not isinstance(num_folds, int) or num_folds < 2:
        raise ValueError(f'num_folds must be an int >= 2, but got '
                         f'{num_folds!r}')
    rng = np.random.default_rng(seed)
    by_class = defaultdict(list)
    for pid, cls in person_classes.items():
        by_class[cls].append(pid)
    folds, pos = {}, 0
    for cls in sorted(by_class):
        pids = sorted(by_class[cls])
        for j in rng.permutation(len(pids)):
            folds[pids[j]] = pos % num_folds
            pos += 1
    return folds


# files an OS or file manager leaves in folders (compared lower-case)
STRAY_FILES = ('thumbs.db', 'ehthumbs.db', 'desktop.ini', '.ds_store')


def _is_stray(fname: str) -> bool:
    """Hidden files (``.DS_Store``, macOS ``._mask1.jpg``) and the OS's
    ``Thumbs.db`` / ``desktop.ini``."""
    return fname.startswith('.') or fname.lower() in STRAY_FILES


def scan_mask_images(img_dir: str) -> List[dict]:
    """Every image of the layout as a data info (sorted, deterministic).

    Stray files -- hidden ones (``.DS_Store``, ``._mask1.jpg`` of macOS
    archives) and ``Thumbs.db`` / ``desktop.ini`` -- are skipped and counted
    in one log line; anything else that does not parse is an error naming
    the file.
    """
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'mask image folder not found: {img_dir}')
    infos = []
    stray: List[str] = []
    for name in sorted(os.listdir(img_dir)):
        pdir = osp.join(img_dir, name)
        if not osp.isdir(pdir):
            if _is_stray(name):
                stray.append(pdir)
            continue
        if name.startswith('.'):
            continue
        person = parse_person_dir(name, pdir)
        seen = {}
        for fname in sorted(os.listdir(pdir)):
            if _is_stray(fname):
                stray.append(osp.join(pdir, fname))
                continue
            fpath = osp.join(pdir, fname)
            mask_label = parse_image_name(fname, fpath)
            stem = osp.splitext(fname)[0]
            if stem in seen:
                raise ValueError(f'{fpath}: duplicate image {stem!r} (also '
                                 f'{seen[stem]})')
            seen[stem] = fpath
            infos.append(
                dict(
                    img_path=fpath,
                    gt_label=int(
                        encode(mask_label, person['gender_label'],
                               person['age_label'])),
                    mask_label=mask_label,
                    **person))
        if not seen:
            raise ValueError(f'{pdir}: person folder has no images')
    if not infos:
        raise FileNotFoundError(f'{img_dir}: no person folders found')
    if stray:
        from mmengine.logging import print_log
        kinds = Counter(osp.basename(p) if not osp.basename(p).startswith(
            '._') else '._*' for p in stray)
        print_log(
            f'MaskDataset: skipped {len(stray)} stray non-image file(s) under '
            f'{img_dir}: ' + ', '.join(f'{k} x{n}'
                                       for k, n in sorted(kinds.items())),
            logger='current', level=logging.INFO)
    return infos


LABEL_FIX_COLUMNS = ('person_id', 'image', 'gender', 'mask', 'age')


def _parse_fix_value(field, value, where):
    value = value.strip()
    if field == 'gender':
        if value.lower() not in GENDERS:
            raise ValueError(f'{where}: gender must be one of '
                             f'{sorted(GENDERS)}, but got {value!r}')
        return value.lower()
    if field == 'mask':
        names = {n: i for i, n in enumerate(MASK_NAMES)}
        if value in names:
            return names[value]
        if value in ('0', '1', '2'):
            return int(value)
        raise ValueError(f'{where}: mask must be one of {list(MASK_NAMES)} '
                         f'or 0/1/2, but got {value!r}')
    if not value.isdigit():
        raise ValueError(f'{where}: age must be a non-negative integer, but '
                         f'got {value!r}')
    return int(value)


def read_label_fixes(path: str) -> List[dict]:
    """Rows of a label-fix CSV, validated (see :func:`apply_label_fixes`).

    Returns dicts ``{'line', 'key': ('person_id'|'image', value), field:
    value, ...}`` for the non-empty fields.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'label_fixes file not found: {path}')
    rows, seen = [], {}
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        unknown = [c for c in cols if c not in LABEL_FIX_COLUMNS]
        if unknown or not ({'person_id', 'image'} & set(cols)):
            raise ValueError(
                f'{path}: label-fix columns must be among '
                f'{LABEL_FIX_COLUMNS} with person_id or image, but got '
                f'{cols}')
        for line, row in enumerate(reader, start=2):
            where = f'{path}:{line}'
            pid = (row.get('person_id') or '').strip()
            image = (row.get('image') or '').strip().replace('\\', '/')
            if bool(pid) == bool(image):
                raise ValueError(f'{where}: give exactly one of person_id / '
                                 f'image, but got {pid!r} / {image!r}')
            key = ('person_id', pid) if pid else ('image', image)
            fields = {c: _parse_fix_value(c, row[c], where)
                      for c in ('gender', 'mask', 'age')
                      if (row.get(c) or '').strip()}
            if not fields:
                raise ValueError(f'{where}: no corrected gender / mask / age')
            allowed = ('gender', 'age') if pid else ('mask', )
            bad = sorted(set(fields) - set(allowed))
            if bad:
                why = 'gender and age are per person: use a person_id row' \
                    if image else 'mask is per image: use an image row'
                raise ValueError(f'{where}: {bad} cannot be fixed on a '
                                 f'{key[0]} row ({why})')
            if key in seen:
                raise ValueError(f'{where}: {key[0]} {key[1]!r} is fixed '
                                 f'twice (also line {seen[key]})')
            seen[key] = line
            rows.append(dict(line=line, key=key, **fields))
    return rows


def apply_label_fixes(infos: List[dict], path: str,
                      img_dir: str) -> List[dict]:
    """Correct gender / age of persons and mask state of images in place.

    The CSV (header required) has the columns ``person_id`` or ``image``
    (the image path relative to the image folder, e.g.
    ``000001_female_Asian_45/normal.jpg``) and any of ``gender`` (male /
    female), ``age`` (years) -- on person rows -- and ``mask`` (wear /
    incorrect / not_wear or 0/1/2) -- on image rows; an empty cell keeps
    the value. A swapped mask pair is two image rows.

    Returns:
        list[dict]: one entry per changed value: ``key``, ``field``, ``old``,
        ``new`` and ``images`` (how many images it touched). Values already
        equal to the correction are not listed.

    Raises:
        ValueError: naming ``path`` and the line for a person or image that
            is not in ``img_dir``, and for malformed rows.
    """
    rows = read_label_fixes(path)
    by_person, by_image = defaultdict(list), {}
    for info in infos:
        by_person[info['person_id']].append(info)
        rel = osp.relpath(info['img_path'], img_dir).replace(os.sep, '/')
        by_image[rel] = info
    changes = []
    for row in rows:
        kind, value = row['key']
        where = f'{path}:{row["line"]}'
        targets = by_person.get(value) if kind == 'person_id' else \
            ([by_image[value]] if value in by_image else None)
        if not targets:
            raise ValueError(
                f'{where}: {kind} {value!r} is not in {img_dir} (label fixes '
                'must name persons/images of the data set)')
        for field in ('gender', 'age', 'mask'):
            if field not in row:
                continue
            info_key = 'mask_label' if field == 'mask' else field
            old = targets[0][info_key]
            if old == row[field]:
                continue
            for info in targets:
                info[info_key] = row[field]
                if field == 'gender':
                    info['gender_label'] = GENDERS[row[field]]
            changes.append(dict(key=f'{kind}={value}', field=field, old=old,
                                new=row[field], images=len(targets)))
    return changes


def relabel(infos: List[dict], age_bins=AGE_BOUNDS) -> int:
    """Recompute ``age_label``, ``person_class`` (always with the
    competition's bins, so folds do not depend on ``age_bins``) and
    ``gt_label``; returns how many ``gt_label`` changed."""
    changed = 0
    for info in infos:
        info['age_label'] = age_to_label(info['age'], age_bins)
        info['person_class'] = info['gender_label'] * 3 + age_to_label(
            info['age'])
        new = int(encode(info['mask_label'], info['gender_label'],
                         info['age_label']))
        changed += int(new != info['gt_label'])
        info['gt_label'] = new
    return changed


# ---------------------------------------------------------------------------
# registry class
# ---------------------------------------------------------------------------


@register_module('datasets', toolboxes=('mmpretrain', ))
class MaskDataset(BaseDataset):
    """Mask-wearing images with a person-wise stratified k-fold split.

    Args:
        data_root (str): Folder containing ``data_prefix``.
        data_prefix (str): Sub-folder with the person folders. Defaults to
            ``'images'``.
        split (str): ``'train'`` (all folds but ``fold``), ``'val'`` (fold
            ``fold``) or ``'all'``. Defaults to ``'all'``.
        num_folds (int): Number of person folds (>= 2). Defaults to 5.
        fold (int): Validation fold index in ``[0, num_folds)``. Defaults
            to 0.
        fold_seed (int): Seed of the person shuffle; keep it fixed across the
            models of an ensemble so their folds agree. Defaults to 0.
        allow_empty_class (bool): Accept a fold whose val or train split
            lacks a joint class that exists in the data. Defaults to False:
            an empty class is a ValueError telling how many such persons
            exist (lower ``num_folds``).
        ann_file (str): Optional CSV with an ``ImageID`` column (the
            competition's ``eval/info.csv``): then the images
            ``data_prefix/ImageID`` are listed in the CSV order, without
            labels, for prediction only (``split`` and folds are ignored).
            Defaults to ``''``.
        label_fixes (str): Optional CSV of corrected labels (person id ->
            gender / age, image path -> mask state; see
            :func:`apply_label_fixes`), applied right after the scan, before
            the folds are made; what changed is logged and kept in
            ``label_fix_report``. Give the same file to the train and the
            val dataset (the folds are stratified by the corrected labels).
            Defaults to ``''`` (none).
        age_bins (tuple[int, int]): ``(young_below, old_from)`` of the age
            classes. Defaults to the competition's ``(30, 60)``; the teams
            trained with ``(30, 58)`` or ``(30, 59)`` (old from 58/59) and
            validated with ``(30, 60)``. The folds always use ``(30, 60)``,
            so train and val may differ here.
        **kwargs: Other arguments of mmpretrain's ``BaseDataset``
            (``pipeline``, ``test_mode``, ``indices``, ...).

    Every data info has ``img_path``, ``gt_label`` (``mask * 6 + gender * 3 +
    age``), ``mask_label``, ``gender_label``, ``age_label``, ``person_id``,
    ``gender``, ``race`` and ``age`` (years), so a sampler can balance any of
    them (``ClassBalancedSampler(label_key='age_label')``).
    """
    METAINFO = dict(classes=class_names())

    def __init__(self,
                 data_root: str,
                 data_prefix: str = 'images',
                 split: str = 'all',
                 num_folds: int = 5,
                 fold: int = 0,
                 fold_seed: int = 0,
                 allow_empty_class: bool = False,
                 ann_file: str = '',
                 label_fixes: str = '',
                 age_bins=AGE_BOUNDS,
                 **kwargs):
        if split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS}, but got '
                             f'{split!r}')
        if not isinstance(num_folds, int) or num_folds < 2:
            raise ValueError(f'num_folds must be an int >= 2, but got '
                             f'{num_folds!r}')
        if not isinstance(fold, int) or not 0 <= fold < num_folds:
            raise ValueError(f'fold must be in [0, {num_folds}), but got '
                             f'{fold!r}')
        self.split = split
        self.num_folds = num_folds
        self.fold = fold
        self.fold_seed = fold_seed
        self.allow_empty_class = allow_empty_class
        self.label_fixes = label_fixes
        self.age_bins = check_age_bins(age_bins)
        self.label_fix_report: List[dict] = []
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        img_dir = self.img_prefix
        if self.ann_file:
            return self._load_test_list(img_dir)
        infos = scan_mask_images(img_dir)
        if self.label_fixes:
            self.label_fix_report = apply_label_fixes(infos, self.label_fixes,
                                                      img_dir)
        relabelled = relabel(infos, self.age_bins)
        if self.label_fixes or self.age_bins != AGE_BOUNDS:
            self._log_relabel(relabelled)
        if self.split == 'all':
            return infos
        person_classes = {i['person_id']: i['person_class'] for i in infos}
        if len(person_classes) < self.num_folds:
            raise ValueError(f'{img_dir}: {len(person_classes)} persons '
                             f'cannot make num_folds={self.num_folds}')
        folds = stratified_person_folds(person_classes, self.num_folds,
                                        self.fold_seed)
        in_val = {pid for pid, f in folds.items() if f == self.fold}
        train = [i for i in infos if i['person_id'] not in in_val]
        val = [i for i in infos if i['person_id'] in in_val]
        if not self.allow_empty_class:
            self._check_classes(img_dir, infos, train, val)
        return val if self.split == 'val' else train

    def _log_relabel(self, relabelled: int):
        from mmengine.logging import print_log
        counts = Counter(c['field'] for c in self.label_fix_report)
        parts = [f'{counts[f]} {f} fix(es)' for f in ('gender', 'age', 'mask')
                 if counts[f]]
        msg = (f'MaskDataset: label_fixes {self.label_fixes}: ' +
               (', '.join(parts) or 'nothing to change') + '; '
               if self.label_fixes else 'MaskDataset: ')
        msg += (f'age_bins {self.age_bins}; {relabelled} image(s) got a new '
                'gt_label')
        for c in self.label_fix_report:
            msg += f'\n  {c["key"]}: {c["field"]} {c["old"]} -> {c["new"]} '\
                f'({c["images"]} image(s))'
        print_log(msg, logger='current', level=logging.INFO)

    def _check_classes(self, img_dir, infos, train, val):
        total = Counter(i['gt_label'] for i in infos)
        persons = defaultdict(set)
        for i in infos:
            persons[i['gt_label']].add(i['person_id'])
        for part_name, part in (('val', val), ('train', train)):
            present = {i['gt_label'] for i in part}
            missing = sorted(set(total) - present)
            if missing:
                c = missing[0]
                _, g, a = decode(c)
                raise ValueError(
                    f'{img_dir}: fold {self.fold} of {self.num_folds} has '
                    f'no image of class {c} ({class_names()[c]}) in its '
                    f'{part_name} split ({len(persons[c])} such persons, '
                    f'{total[c]} images in total; gender '
                    f'{GENDER_NAMES[g]}, age {AGE_NAMES[a]}). Lower '
                    'num_folds or pass allow_empty_class=True')

    def _load_test_list(self, img_dir: str) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'ann_file not found: {self.ann_file}')
        with open(self.ann_file, newline='') as f:
            reader = csv.DictReader(f)
            if 'ImageID' not in (reader.fieldnames or []):
                raise KeyError(f'{self.ann_file}: needs an "ImageID" column, '
                               f'got {reader.fieldnames}')
            ids = [row['ImageID'] for row in reader]
        infos = []
        for image_id in ids:
            path = osp.join(img_dir, image_id)
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'{self.ann_file}: image {image_id!r} not found at '
                    f'{path}')
            infos.append(dict(img_path=path, image_id=image_id))
        return infos

    def get_person_ids(self) -> List[str]:
        """Person id of every sample (for checks and group-aware tools)."""
        return [self.get_data_info(i)['person_id'] for i in range(len(self))]

    def extra_repr(self) -> List[str]:
        body = [f'Split: \t{self.split} (fold {self.fold} of '
                f'{self.num_folds}, fold_seed {self.fold_seed})']
        return body

