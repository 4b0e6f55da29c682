"""tools/ensemble.py: hard and soft voting on a fixture, CSV output."""
import csv
import pickle

import numpy as np
import pytest
import torch

from ensemble import hard_vote, hard_vote_groups, main, soft_vote

# 3 models x 4 images x 3 classes
SCORES = np.array([
    [[.6, .3, .1], [.1, .5, .4], [.2, .3, .5], [.4, .35, .25]],
    [[.5, .4, .1], [.1, .2, .7], [.6, .2, .2], [.1, .5, .4]],
    [[.1, .8, .1], [.4, .3, .3], [.1, .2, .7], [.3, .3, .4]],
])


def test_soft_vote_fixture():
    labels, mean = soft_vote(SCORES)
    # image 0 mean (.4, .5, .1); 1 (.2, .333, .467); 2 (.3, .233, .467);
    # 3 (.267, .383, .35)
    assert labels.tolist() == [1, 2, 2, 1]
    assert mean[0].tolist() == pytest.approx([.4, .5, .1])
    labels, _ = soft_vote(SCORES, weights=[0, 0, 1])
    assert labels.tolist() == SCORES[2].argmax(1).tolist()


def test_hard_vote_fixture():
    # argmaxes: img0 0,0,1 -> 0 ; img1 1,2,0 -> 3-way tie, summed scores
    # (.6, 1.0, 1.4) -> 2 ; img2 2,0,2 -> 2 ; img3 0,1,2 -> tie, summed
    # (.8, 1.15, 1.05) -> 1
    assert hard_vote(SCORES).tolist() == [0, 2, 2, 1]
    # weights change the majority
    assert hard_vote(SCORES, weights=[1, 1, 3]).tolist() == [1, 0, 2, 2]
    with pytest.raises(ValueError, match='need 3 non-negative weights'):
        hard_vote(SCORES, weights=[1, 1])


def test_hard_vote_per_group():
    # joint code over groups (2, 2): c = a * 2 + b
    s = np.zeros((3, 1, 4))
    s[0, 0, 0] = 1  # (0, 0)
    s[1, 0, 3] = 1  # (1, 1)
    s[2, 0, 1] = 1  # (0, 1)
    # joint votes 0/3/1 tie; per group: a -> 0 (2 votes), b -> 1 (2 votes)
    assert hard_vote_groups(s, (2, 2)).tolist() == [1]


def _dump(path, scores, names, gt=None):
    records = []
    for i, (s, n) in enumerate(zip(scores, names)):
        r = dict(img_path=f'/data/eval/images/{n}',
                 pred_score=torch.tensor(s, dtype=torch.float32),
                 sample_idx=i)
        if gt is not None:
            r['gt_label'] = torch.tensor([gt[i]])
        records.append(r)
    with open(path, 'wb') as f:
        pickle.dump(records, f)


def test_cli_writes_submission(tmp_path, capsys):
    names = ['d.jpg', 'a.jpg', 'c.jpg', 'b.jpg']
    files = []
    for m in range(3):
        f = tmp_path / f'm{m}.pkl'
        order = [0, 1, 2, 3] if m == 0 else [3, 2, 1, 0]  # any order
        _dump(f, SCORES[m][order], [names[i] for i in order],
              gt=[[1, 2, 2, 0][i] for i in order])
        files.append(str(f))
    info = tmp_path / 'info.csv'
    info.write_text('ImageID,ans\na.jpg,0\nb.jpg,0\nc.jpg,0\nd.jpg,0\n')
    out = tmp_path / 'sub.csv'
    report = main(files + ['--mode', 'hard', '--out', str(out),
                           '--info-csv', str(info)])
    rows = list(csv.reader(open(out)))
    assert rows[0] == ['ImageID', 'ans']
    # hard labels by image: d 0, a 2, c 2, b 1 -> info.csv order a, b, c, d
    assert rows[1:] == [['a.jpg', '2'], ['b.jpg', '1'], ['c.jpg', '2'],
                        ['d.jpg', '0']]
    assert report['rows'] == 4
    # gt 1,2,2,0 (by d,a,c,b): ensemble gets a, c right
    assert 'ensemble (hard): macro-F1' in capsys.readouterr().out
    main(files + ['--out', str(out)])
    rows = list(csv.reader(open(out)))
    assert rows[1:] == [['d.jpg', '1'], ['a.jpg', '2'], ['c.jpg', '2'],
                        ['b.jpg', '1']]
    bad = tmp_path / 'bad.pkl'
    _dump(bad, SCORES[0][:3], names[:3])
    with pytest.raises(ValueError, match='bad.pkl: predicts other images'):
        main(files[:1] + [str(bad), '--out', str(out)])
    info.write_text('ImageID,ans\nzzz.jpg,0\n')
    with pytest.raises(KeyError, match="info.csv: 1 ImageIDs have no "
                       "prediction, e.g. 'zzz.jpg'"):
        main(files + ['--out', str(out), '--info-csv', str(info)])
