"""MaskDataset(label_fixes=CSV): corrections applied before the folds,
reported, folds still person-disjoint; configurable age_bins; bad rows."""
import os
import os.path as osp
from collections import defaultdict

import pytest

pytest.importorskip('mmpretrain')

from mmplugins.datasets.mask_dataset import MaskDataset  # noqa: E402
from mmplugins.models.heads.mask_label import decode  # noqa: E402


def _infos(ds):
    return [ds.get_data_info(i) for i in range(len(ds))]


def _persons(root):
    """{person_id: (folder, gender, age)} of the demo data."""
    out = {}
    for name in sorted(os.listdir(osp.join(root, 'images'))):
        pid, gender, _, age = name.split('_')
        out[pid] = (name, gender, int(age))
    return out


def _write(path, text):
    with open(path, 'w') as f:
        f.write(text)
    return str(path)


def test_fixes_applied_reported_and_folds_disjoint(mask_demo_root, tmp_path):
    persons = _persons(mask_demo_root)
    pids = sorted(persons)
    p_gender, p_age, p_mask = pids[4], pids[7], pids[9]
    folder, gender, _ = persons[p_gender]
    new_gender = 'male' if gender == 'female' else 'female'
    mfolder = persons[p_mask][0]
    ext = osp.splitext(sorted(os.listdir(osp.join(
        mask_demo_root, 'images', mfolder)))[0])[1]
    csv = _write(tmp_path / 'fixes.csv', (
        'person_id,image,gender,mask,age\n'
        f'{p_gender},,{new_gender},,\n'
        f'{p_age},,,,77\n'
        # the swapped pair: incorrect_mask <-> normal
        f',{mfolder}/incorrect_mask{ext},,not_wear,\n'
        f',{mfolder}/normal{ext},,incorrect,\n'))
    plain = {i['img_path']: i for i in _infos(
        MaskDataset(data_root=mask_demo_root, split='all'))}
    ds = MaskDataset(data_root=mask_demo_root, split='all', label_fixes=csv)
    fixed = {i['img_path']: i for i in _infos(ds)}
    changed = {p for p in plain if plain[p]['gt_label'] != fixed[p]['gt_label']}
    want = set()
    for path, info in fixed.items():
        pid = info['person_id']
        m, g, a = decode(info['gt_label'])
        m0, g0, a0 = decode(plain[path]['gt_label'])
        stem = osp.splitext(osp.basename(path))[0]
        if pid == p_gender:
            assert g == 1 - g0 and (m, a) == (m0, a0)
            assert info['gender'] == new_gender
        elif pid == p_age:
            assert info['age'] == 77 and a == 2 and (m, g) == (m0, g0)
        elif pid == p_mask and stem in ('incorrect_mask', 'normal'):
            assert m == {'incorrect_mask': 2, 'normal': 1}[stem]
            assert (g, a) == (g0, a0)
        else:
            assert info['gt_label'] == plain[path]['gt_label']
            continue
        if (m, g, a) != (m0, g0, a0):
            want.add(path)
    assert changed == want
    assert len(changed) == 7 + (7 if persons[p_age][2] < 60 else 0) + 2
    # the report: one entry per changed value
    rep = {(r['key'], r['field']): r for r in ds.label_fix_report}
    assert rep[(f'person_id={p_gender}', 'gender')]['new'] == new_gender
    assert rep[(f'person_id={p_gender}', 'gender')]['images'] == 7
    assert rep[(f'person_id={p_age}', 'age')]['old'] == persons[p_age][2]
    assert rep[(f'image={mfolder}/normal{ext}', 'mask')]['old'] == 2
    assert len(rep) == 4
    # folds from the corrected labels: train and val share no person and
    # cover everyone
    kw = dict(data_root=mask_demo_root, num_folds=3, fold=1,
              allow_empty_class=True, label_fixes=csv)
    train = _infos(MaskDataset(split='train', **kw))
    val = _infos(MaskDataset(split='val', **kw))
    tp = {i['person_id'] for i in train}
    vp = {i['person_id'] for i in val}
    assert not tp & vp and len(tp | vp) == 60
    # the corrected labels are the ones the split carries
    by_path = {i['img_path']: i['gt_label'] for i in train + val}
    assert all(by_path[p] == fixed[p]['gt_label'] for p in fixed)


def test_fix_report_is_logged(mask_demo_root, tmp_path):
    from mmengine.logging import MMLogger
    pid = sorted(_persons(mask_demo_root))[0]
    csv = _write(tmp_path / 'f.csv', f'person_id,age\n{pid},88\n')
    logger = MMLogger.get_instance('label_fix_test',
                                   log_file=str(tmp_path / 'log.txt'))
    MaskDataset(data_root=mask_demo_root, split='all', label_fixes=csv)
    out = open(tmp_path / 'log.txt').read()
    del logger
    assert f'label_fixes {csv}: 1 age fix(es)' in out
    assert f'person_id={pid}: age' in out and '-> 88 (7 image(s))' in out


def test_age_bins(mask_demo_root):
    infos = _infos(MaskDataset(data_root=mask_demo_root, split='all',
                               age_bins=(30, 58)))
    ages = {i['age'] for i in infos}
    assert ages & {58, 59}, 'the demo data should have ages 58/59'
    for i in infos:
        a = decode(i['gt_label'])[2]
        assert a == (0 if i['age'] < 30 else 1 if i['age'] < 58 else 2)
        assert i['age_label'] == a
    # folds do not depend on age_bins: the same persons in val
    kw = dict(data_root=mask_demo_root, num_folds=3, fold=0,
              allow_empty_class=True, split='val')
    a = {i['person_id'] for i in _infos(MaskDataset(**kw))}
    b = {i['person_id'] for i in _infos(MaskDataset(age_bins=(30, 58),
                                                    **kw))}
    assert a == b
    with pytest.raises(ValueError, match=r'age_bins must be two increasing '
                       r'positive integers .* but got \(60, 30\)'):
        MaskDataset(data_root=mask_demo_root, age_bins=(60, 30))


@pytest.mark.parametrize('text,match', [
    ('person_id,gender\n999999,male\n',
     r"f.csv:2: person_id '999999' is not in"),
    ('image,mask\nnobody/mask1.jpg,wear\n',
     r"f.csv:2: image 'nobody/mask1.jpg' is not in"),
    ('person_id,gender\n{pid},robot\n', r'f.csv:2: gender must be one of'),
    ('person_id,mask\n{pid},wear\n', r'f.csv:2: \[.mask.\] cannot be fixed'),
    ('person_id,age\n{pid},40\n{pid},41\n', r'f.csv:3: person_id .* twice'),
    ('who,age\nx,3\n', r'f.csv: label-fix columns must be among'),
])
def test_bad_label_fix_rows_name_the_file_and_line(mask_demo_root, tmp_path,
                                                   text, match):
    pid = sorted(_persons(mask_demo_root))[0]
    csv = _write(tmp_path / 'f.csv', text.format(pid=pid))
    with pytest.raises(ValueError, match=match):
        MaskDataset(data_root=mask_demo_root, split='all', label_fixes=csv)
