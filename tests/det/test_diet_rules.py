"""DietSampler: the reference rule set, rule semantics, dataset protocols and
bad input."""
import numpy as np
import pytest
from _diet_fixtures import (CIGAR, CLASSES, EC, EO, FACE, MC, MO, PHONE,
                            REFERENCE_FIXTURE, REFERENCE_RULES,
                            REFERENCE_SUBSET, CatIdsDataset)

import mmplugins  # noqa: F401
from mmplugins.datasets.samplers._category_info import CategoryInfo
from mmplugins.datasets.samplers.diet_sampler import (DietSampler,
                                                      diet_select,
                                                      parse_rules)


def build(dataset, **kwargs):
    from mmengine.registry import DATA_SAMPLERS
    cfg = dict(type='DietSampler', rules=REFERENCE_RULES, verbose=False)
    cfg.update(kwargs)
    return DATA_SAMPLERS.build(cfg, default_args=dict(dataset=dataset,
                                                      seed=0))


def test_reference_rules_exact_subset(reference_dataset):
    sampler = build(reference_dataset)
    assert isinstance(sampler, DietSampler)
    assert sampler.selection.indices.tolist() == REFERENCE_SUBSET
    # every image is decided by the rule the fixture says (5 = no rule)
    decided = [r + 1 if r >= 0 else 5
               for r in sampler.selection.decided_by.tolist()]
    assert decided == [rule for _, rule, _ in REFERENCE_FIXTURE]
    assert sampler.selection.matched == [3, 2, 1, 6]
    assert sampler.selection.kept == [3, 2, 1, 2]
    assert sampler.selection.default_matched == 3
    # epoch_parts=1: one epoch = the whole subset, shuffled
    assert sorted(sampler) == REFERENCE_SUBSET
    assert len(sampler) == len(REFERENCE_SUBSET)


def test_histogram_before_after(reference_dataset):
    rep = build(reference_dataset).report()
    full = np.zeros(7, int)
    diet = np.zeros(7, int)
    for i, (ids, _, kept) in enumerate(REFERENCE_FIXTURE):
        for c in ids:
            full[c] += 1
            diet[c] += kept
    assert rep['full'] == full.tolist()
    assert rep['diet'] == diet.tolist()
    assert rep['diet'][PHONE] == rep['full'][PHONE] == 2
    assert rep['diet'][CIGAR] == rep['full'][CIGAR] == 1
    assert rep['unit'] == 'instances'
    assert rep['subset_size'] == 8 and rep['num_images'] == 15


def test_histogram_is_logged(reference_dataset, capsys):
    from mmengine.logging import MMLogger
    MMLogger.get_instance('test_diet_log', log_level='INFO')
    build(reference_dataset, verbose=True)
    out = capsys.readouterr().out
    assert 'DietSampler kept 8 of 15 images' in out
    assert 'keep every 3: matched 6, kept 2' in out
    # the phone row: full 2, diet 2
    assert any(line.split() == ['phone', '2', '2']
               for line in out.splitlines())


def test_rule_conditions_and_actions():
    per_image = [[EO], [EO, PHONE], [EC], [EC, MO], [MO], [MO], [FACE], []]
    info = CategoryInfo.from_lists(per_image, CLASSES)
    # none_of + keep=False: drop eye_closed-without-mouth_opened first
    rules = parse_rules([
        dict(any_of='eye_closed', none_of='mouth_opened', keep=False),
        dict(all_of=['eye_closed']),
        dict(keep=True, any_of=['eye_opened', 'mouth_opened'],
             none_of=['phone']),
    ], CLASSES)
    sel = diet_select(info, rules, default_keep=False)
    assert sel.indices.tolist() == [0, 3, 4, 5]
    assert sel.matched == [1, 1, 3]
    sel = diet_select(info, rules, default_keep=True)
    assert sel.indices.tolist() == [0, 1, 3, 4, 5, 6, 7]
    # a rule without conditions matches everything still undecided
    sel = diet_select(info, parse_rules([dict(keep_every=2)], CLASSES))
    assert sel.indices.tolist() == [1, 3, 5, 7]


def test_keep_fraction_is_seeded_and_exact():
    info = CategoryInfo.from_lists([[MO]] * 100 + [[EO]] * 50, CLASSES)
    rules = parse_rules([dict(any_of='mouth_opened', keep_fraction=0.25,
                              seed=3)], CLASSES)
    a = diet_select(info, rules).indices
    b = diet_select(info, rules).indices
    assert len(a) == 25 and a.max() < 100
    assert a.tolist() == b.tolist()
    other = diet_select(info, parse_rules(
        [dict(any_of='mouth_opened', keep_fraction=0.25, seed=4)],
        CLASSES)).indices
    assert other.tolist() != a.tolist()


def test_subset_independent_of_sampling_seed(reference_dataset):
    a = build(reference_dataset, seed=1)
    b = build(reference_dataset, seed=2)
    assert a.selection.indices.tolist() == b.selection.indices.tolist()


def test_real_mmdet_dataset(driver_demo_small):
    """CocoDataset.get_cat_ids (after mmdet's filter_empty_gt)."""
    import json

    from mmdet.datasets import CocoDataset
    root = driver_demo_small['data_root']
    ds = CocoDataset(data_root=root, ann_file='annotations/'
                     'instances_train.json', data_prefix=dict(img='train/'),
                     metainfo=dict(classes=CLASSES),
                     filter_cfg=dict(filter_empty_gt=True), pipeline=[])
    sampler = build(ds)
    # recompute the reference decision straight from the json
    coco = json.load(open(root + 'annotations/instances_train.json'))
    cats = {img['id']: set() for img in coco['images']}
    for ann in coco['annotations']:
        cats[ann['image_id']].add(CLASSES[ann['category_id'] - 1])
    expected, mouth_count = [], 0
    for i, img in enumerate(coco['images']):
        c = cats[img['id']]
        if c & {'cigar', 'phone'} or {'eye_closed', 'mouth_closed'} <= c \
                or {'eye_closed', 'mouth_opened'} <= c:
            expected.append(i)
        elif 'mouth_opened' in c:
            mouth_count += 1
            if mouth_count % 3 == 0:
                expected.append(i)
    assert [ds.get_data_info(i)['img_id'] - 1
            for i in sampler.selection.indices] == expected
    rep = sampler.report()
    assert rep['full'] == [driver_demo_small['train']['instances'][c]
                           for c in CLASSES]


def test_segmentation_dataset_pixel_counts(tmp_path):
    """mmseg datasets: per-image class statistics from the label maps."""
    import cv2
    from mmseg.datasets import BaseSegDataset
    (tmp_path / 'img').mkdir()
    (tmp_path / 'ann').mkdir()
    maps = [
        [0, 0, 1],     # road, car -> rule 1
        [0, 2],        # road, person -> rule 2 (kept, every 1)
        [0],           # road -> default drop
        [3, 255],      # sky + ignore -> default drop
    ]
    for i, values in enumerate(maps):
        lab = np.full((8, 8), 255, np.uint8)
        for k, v in enumerate(values):
            lab[k] = v
        cv2.imwrite(str(tmp_path / 'ann' / f'{i}.png'), lab)
        cv2.imwrite(str(tmp_path / 'img' / f'{i}.png'),
                    np.zeros((8, 8, 3), np.uint8))
    ds = BaseSegDataset(
        data_root=str(tmp_path), data_prefix=dict(img_path='img',
                                                  seg_map_path='ann'),
        img_suffix='.png', seg_map_suffix='.png', pipeline=[],
        metainfo=dict(classes=('road', 'car', 'person', 'sky')))
    sampler = build(ds, rules=[dict(any_of='car'), dict(any_of='person')])
    assert sampler.selection.indices.tolist() == [0, 1]
    rep = sampler.report()
    assert rep['unit'] == 'pixels'
    assert rep['full'] == [8 * 4, 8, 8, 8]
    assert rep['diet'] == [8 * 3, 8, 8, 0]


def test_class_stats_protocol_and_classification_labels():
    class Stats:
        metainfo = dict(classes=('a', 'b'))

        def __len__(self):
            return 3

        def get_class_stats(self):
            return np.array([[5, 0], [0, 7], [1, 1]])

    sampler = build(Stats(), rules=[dict(all_of=['a', 'b'])])
    assert sampler.selection.indices.tolist() == [2]
    assert sampler.report()['full'] == [6, 8]

    from mmengine.dataset import BaseDataset

    class Cls(BaseDataset):
        METAINFO = dict(classes=('cat', 'dog', 'bird'))

        def load_data_list(self):
            return [dict(gt_label=label) for label in (0, 2, 1, 2, 2)]

    ds = Cls(ann_file='', serialize_data=False)
    sampler = build(ds, rules=[dict(any_of='bird', keep_every=2),
                               dict(any_of='cat')])
    assert sampler.selection.indices.tolist() == [0, 3]
    assert sampler.report()['unit'] == 'images'


# ---------------------------------------------------------------- bad input
def test_unknown_category_is_a_clear_error(reference_dataset):
    with pytest.raises(KeyError, match=r"names categories \['cellphone'\].*"
                       r"classes are \('eye_opened'"):
        build(reference_dataset, rules=[dict(any_of=['cellphone', 'face'])])


def test_empty_subset_is_a_clear_error():
    ds = CatIdsDataset([[EO, MC], [EO, MC]])
    with pytest.raises(ValueError, match='the rules keep no image of the 2'):
        build(ds)


@pytest.mark.parametrize('parts', [0, -1, 2.5])
def test_epoch_parts_below_one(reference_dataset, parts):
    with pytest.raises(ValueError, match='epoch_parts must be'):
        build(reference_dataset, epoch_parts=parts)


def test_epoch_parts_larger_than_subset(reference_dataset):
    with pytest.raises(ValueError, match=r'epoch_parts=9 is larger than the '
                       r'subset \(8 items\)'):
        build(reference_dataset, epoch_parts=9)


def test_dataset_without_category_info():
    class NoInfo:
        metainfo = dict(classes=('a', 'b'))

        def __len__(self):
            return 2

        def get_data_info(self, idx):
            return dict(img_path=f'{idx}.png')

    with pytest.raises(ValueError, match='NoInfo has no category '
                       'information: expected one of get_class_stats'):
        build(NoInfo(), rules=[dict(any_of='a')])

    class NoClasses(CatIdsDataset):
        pass

    ds = NoClasses([[0]])
    ds.metainfo = {}
    with pytest.raises(ValueError, match=r'no metainfo\["classes"\]'):
        build(ds)


@pytest.mark.parametrize('rule, msg', [
    (dict(any_of='phone', keep_every=0), 'keep_every must be an int >= 1'),
    (dict(any_of='phone', keep_fraction=1.5), r'keep_fraction must be in'),
    (dict(any_of='phone', keep_every=2, keep_fraction=0.5), 'not both'),
    (dict(any_if='phone'), r"unknown keys \['any_if'\]"),
    (dict(any_of=[]), 'non-empty list of names'),
    (dict(any_of='phone', keep=False, keep_every=2), 'keep=False'),
])
def test_malformed_rules(reference_dataset, rule, msg):
    with pytest.raises(ValueError, match=msg):
        build(reference_dataset, rules=[rule])
