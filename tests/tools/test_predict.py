"""tools/predict.py on the demo layout with real configs and checkpoints:
mmseg's inference API on our configs, ensembles, TTA, tools/test.py parity,
HRDA / batched slide, bad input."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from _testutils import ROOT

CLASSES = ('Road', 'Sidewalk', 'Construction', 'Fence', 'Pole',
           'Traffic Light', 'Traffic Sign', 'Nature', 'Sky', 'Person',
           'Rider', 'Car')


def _cfg(name, data_root):
    from mmengine.config import Config
    from _testutils import set_data_root
    cfg = Config.fromfile(osp.join(ROOT, 'configs', f'{name}.py'))
    set_data_root(cfg, data_root)
    for key in ('test_dataloader', 'val_dataloader'):
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
    return cfg


def _checkpoint(cfg, path, seed, classes=CLASSES):
    """A checkpoint in the Runner's format: random weights (seeded) with a
    classifier scaled up so the softmax is far from uniform (averaging
    logits and averaging probabilities then disagree)."""
    import mmplugins  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'conv_seg' in name and name.endswith('weight'):
                p.mul_(300)
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(
                        classes=classes,
                        palette=[[i * 20, 0, 0] for i in range(12)]))),
               path)
    return path


@pytest.fixture(scope='module')
def ws(tmp_path_factory, seg_demo_root):
    d = tmp_path_factory.mktemp('predict')
    cfgs = {n: _cfg(n, seg_demo_root) for n in ('mic_dual_aug', 'mic_hrda',
                                                'source_only')}
    ck = dict(
        a=_checkpoint(cfgs['mic_dual_aug'], str(d / 'a.pth'), 0),
        b=_checkpoint(cfgs['mic_dual_aug'], str(d / 'b.pth'), 1),
        hrda=_checkpoint(cfgs['mic_hrda'], str(d / 'hrda.pth'), 2),
        src=_checkpoint(cfgs['source_only'], str(d / 'src.pth'), 3))
    cfg_files = {}
    for n, c in cfgs.items():
        c.dump(str(d / f'{n}.py'))
        cfg_files[n] = str(d / f'{n}.py')
    return dict(dir=d, cfg=cfg_files, ck=ck, root=seg_demo_root,
                img_dir=osp.join(seg_demo_root, 'val_target_image'))


def _predict(*argv):
    import predict  # tools/predict.py
    return predict.main([str(a) for a in argv] + ['--no-progress'])


def _pngs(folder):
    return {f: np.asarray(Image.open(osp.join(folder, f)))
            for f in sorted(os.listdir(folder))}


def _probs(cfg_file, ckpt, imgs):
    """Softmax at the image size through mmseg's own API."""
    from mmseg.apis import inference_model, init_model
    model = init_model(cfg_file, ckpt, device='cpu')
    return [inference_model(model, img).seg_logits.data.softmax(0)
            for img in imgs]


def test_mmseg_inference_api_on_uda_hrda_and_source_only(ws):
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    img = osp.join(ws['img_dir'], 'VALID_TARGET_0000.png')
    for name, ck in (('mic_dual_aug', 'a'), ('mic_hrda', 'hrda'),
                     ('source_only', 'src')):
        model = init_model(ws['cfg'][name], ws['ck'][ck], device='cpu')
        res = inference_model(model, img)
        assert res.pred_sem_seg.shape == (256, 512)
        assert model.dataset_meta['classes'] == CLASSES
        inf = MMSegInferencer(model=ws['cfg'][name], weights=ws['ck'][ck],
                              device='cpu')
        out = inf(img, show=False)['predictions']
        np.testing.assert_array_equal(out, res.pred_sem_seg.data[0].numpy())
    # the UDA model predicts with its eval_model
    uda = init_model(ws['cfg']['mic_dual_aug'], ws['ck']['a'], device='cpu')
    x = torch.rand(1, 3, 64, 128)
    assert torch.equal(uda(x), uda.student(x))
    uda.eval_model = 'teacher'
    with torch.no_grad():
        uda.teacher.decode_head.conv_seg.weight.mul_(-1)
    assert torch.equal(uda(x), uda.teacher(x))
    assert not torch.equal(uda(x), uda.student(x))


def test_ensemble_of_one_and_two_is_the_hand_averaged_softmax(ws):
    imgs = sorted(os.listdir(ws['img_dir']))
    cfg = ws['cfg']['mic_dual_aug']
    paths = [osp.join(ws['img_dir'], f) for f in imgs]
    pa = _probs(cfg, ws['ck']['a'], paths)
    pb = _probs(cfg, ws['ck']['b'], paths)
    one = ws['dir'] / 'one'
    _predict(cfg, ws['ck']['a'], '--img-dir', ws['img_dir'], '--out', one,
             '--format', 'trainids', '--batch-size', 2)
    two = ws['dir'] / 'two'
    _predict(cfg, ws['ck']['a'], cfg, ws['ck']['b'], '--img-dir',
             ws['img_dir'], '--out', two, '--format', 'trainids',
             '--weights', 1, 3)
    hard = ws['dir'] / 'hard'
    _predict(cfg, ws['ck']['a'], cfg, ws['ck']['b'], '--img-dir',
             ws['img_dir'], '--out', hard, '--format', 'trainids',
             '--mode', 'hard')
    got1, got2, goth = _pngs(one), _pngs(two), _pngs(hard)
    assert sorted(got1) == [f[:-4] + '.png' for f in imgs]
    differs = 0
    for f, a, b in zip(imgs, pa, pb):
        # (batch of 2 vs 1: float noise of batched kernels may flip a
        # saturated tie; tools/test.py parity below is exact at batch 1)
        assert (got1[f] == a.argmax(0).numpy()).mean() > 0.9999, f
        want = ((1 * a + 3 * b) / 4).argmax(0).numpy()
        assert (got2[f] == want).mean() > 0.9999, f
        # weights matter and the probabilities (not logits) are averaged
        differs += (want != b.argmax(0).numpy()).sum()
        # hard, equal weights: where the two disagree the tie goes to the
        # one of the two classes with the larger summed probability
        # (then the lower id: saturated softmaxes tie exactly)
        la, lb = a.argmax(0), b.argmax(0)
        s = 0.5 * a + 0.5 * b
        sa, sb = s.gather(0, la[None])[0], s.gather(0, lb[None])[0]
        pick = torch.where(sa > sb, la, torch.where(
            sa < sb, lb, torch.minimum(la, lb)))
        assert (goth[f] == pick.numpy()).mean() > 0.9999, f
    assert differs > 0


def test_tta_flip_view_is_unflipped_before_averaging(ws, tmp_path):
    # flip-only TTA at the test scale, on the (asymmetric) demo frames
    cfg_file = tmp_path / 'flip_tta.py'
    cfg_file.write_text(
        f"_base_ = [{ws['cfg']['mic_dual_aug']!r}]\n"
        "tta_pipeline = [dict(type='LoadImageFromFile'), dict(\n"
        "    type='TestTimeAug', transforms=[\n"
        "        [dict(type='Resize', scale=(512, 256), keep_ratio=True)],\n"
        "        [dict(type='RandomFlip', prob=0., direction='horizontal'),\n"
        "         dict(type='RandomFlip', prob=1., direction='horizontal')],\n"
        "        [dict(type='LoadAnnotations')],\n"
        "        [dict(type='PackSegInputs')]])]\n")
    out = tmp_path / 'tta'
    _predict(cfg_file, ws['ck']['a'], '--img-dir', ws['img_dir'], '--out',
             out, '--format', 'trainids', '--tta')
    got = _pngs(out)
    import mmcv
    from mmseg.apis import inference_model, init_model
    model = init_model(str(cfg_file), ws['ck']['a'], device='cpu')
    for f in sorted(os.listdir(ws['img_dir'])):
        img = mmcv.imread(osp.join(ws['img_dir'], f))
        assert not np.array_equal(img, img[:, ::-1])
        p = inference_model(model, img).seg_logits.data.softmax(0)
        q = inference_model(model, np.ascontiguousarray(
            img[:, ::-1])).seg_logits.data.softmax(0).flip(-1)
        want = ((p + q) / 2).argmax(0).numpy()
        assert (got[f] == want).mean() > 0.9999, f
        assert (want != p.argmax(0).numpy()).any()  # the flip view counts
    # tools/test.py --tta (SegTTAModel over the same tta_pipeline) agrees
    import test as test_tool  # tools/test.py
    test_tool.main([str(cfg_file), ws['ck']['a'], '--tta', '--work-dir',
                    str(tmp_path / 'w'), '--out', str(tmp_path / 'ref')])
    ref = _pngs(tmp_path / 'ref')
    assert sorted(ref) == sorted(got)
    for f in ref:
        assert (ref[f] == got[f]).mean() > 0.9999, f


def test_predict_equals_tools_test_predictions(ws, tmp_path):
    import test as test_tool  # tools/test.py
    cfg = ws['cfg']['mic_dual_aug']
    test_tool.main([cfg, ws['ck']['a'], '--work-dir', str(tmp_path / 'w'),
                    '--out', str(tmp_path / 'test_out')])
    _predict(cfg, ws['ck']['a'], '--img-dir', ws['img_dir'], '--out',
             tmp_path / 'pred', '--format', 'trainids')
    ref, got = _pngs(tmp_path / 'test_out'), _pngs(tmp_path / 'pred')
    assert sorted(ref) == sorted(got) and len(ref) == 3
    for f in ref:
        np.testing.assert_array_equal(got[f], ref[f])


def test_hrda_and_batched_slide_configs(ws, tmp_path):
    img = osp.join(ws['img_dir'], 'VALID_TARGET_0001.png')
    one = tmp_path / 'one'
    os.makedirs(one)
    os.symlink(img, one / 'x.png')
    # HRDA (whole-image test of the demo recipe), TTA views included
    _predict(ws['cfg']['mic_hrda'], ws['ck']['hrda'], '--img-dir', one,
             '--out', tmp_path / 'hrda', '--format', 'trainids')
    want = _probs(ws['cfg']['mic_hrda'], ws['ck']['hrda'], [img])[0].argmax(0)
    np.testing.assert_array_equal(_pngs(tmp_path / 'hrda')['x.png'],
                                  want.numpy())
    # HRDA under TTA (flip-only, at the test scale): the mean of the
    # image's and the un-flipped flipped image's softmax
    hrda_tta = tmp_path / 'hrda_tta.py'
    hrda_tta.write_text(
        f"_base_ = [{ws['cfg']['mic_hrda']!r}]\n"
        "tta_pipeline = [dict(type='LoadImageFromFile'), dict(\n"
        "    type='TestTimeAug', transforms=[\n"
        "        [dict(type='Resize', scale=(512, 256), keep_ratio=True)],\n"
        "        [dict(type='RandomFlip', prob=0., direction='horizontal'),\n"
        "         dict(type='RandomFlip', prob=1., direction='horizontal')],\n"
        "        [dict(type='PackSegInputs')]])]\n")
    _predict(hrda_tta, ws['ck']['hrda'], '--img-dir', one, '--out',
             tmp_path / 'hrda_tta', '--format', 'trainids', '--tta')
    import mmcv
    frame = mmcv.imread(img)
    p, q = _probs(str(hrda_tta), ws['ck']['hrda'],
                  [frame, np.ascontiguousarray(frame[:, ::-1])])
    want = ((p + q.flip(-1)) / 2).argmax(0).numpy()
    assert (_pngs(tmp_path / 'hrda_tta')['x.png'] == want).mean() > 0.9999
    # batched sliding windows on the DAFormer student (same weights)
    from mmengine.config import Config
    cfg = Config.fromfile(ws['cfg']['mic_dual_aug'])
    cfg.model.segmentor.type = 'BatchedSlideEncoderDecoder'
    cfg.model.segmentor.test_cfg = dict(mode='slide', crop_size=(128, 128),
                                        stride=(96, 96), batch_size=3)
    slide = str(tmp_path / 'slide.py')
    cfg.dump(slide)
    _predict(slide, ws['ck']['a'], '--img-dir', one, '--out',
             tmp_path / 'slide', '--format', 'samsung')
    from mmseg.apis import inference_model, init_model
    model = init_model(slide, ws['ck']['a'], device='cpu')
    logits = inference_model(model, img).seg_logits.data
    whole = _probs(ws['cfg']['mic_dual_aug'], ws['ck']['a'], [img])[0]
    assert not torch.equal(logits.softmax(0), whole)  # slide really ran
    from mmplugins.submission.rle import rle_decode
    prob = torch.nn.functional.interpolate(
        logits.softmax(0)[None], size=(540, 960), mode='bilinear',
        align_corners=False)[0]
    lbl = prob.argmax(0).numpy()
    import csv
    rows = list(csv.reader(open(tmp_path / 'slide')))[1:]
    assert [r[0] for r in rows] == [f'x_class_{k}' for k in range(12)]
    dec = sum(k * rle_decode(r[1], (540, 960)) for k, r in enumerate(rows))
    assert (dec == lbl).mean() > 0.9999


def test_bad_input_names_the_item_and_leaves_nothing(ws, tmp_path):
    cfg, ck = ws['cfg']['mic_dual_aug'], ws['ck']['a']
    out = tmp_path / 'out.csv'
    empty = tmp_path / 'empty'
    os.makedirs(empty)
    with pytest.raises(ValueError, match='empty holds no image'):
        _predict(cfg, ck, '--img-dir', empty, '--out', out)
    notes = tmp_path / 'notes'
    os.makedirs(notes)
    os.symlink(osp.join(ws['img_dir'], 'VALID_TARGET_0000.png'),
               notes / 'a.png')
    (notes / 'readme.txt').write_text('hi')
    with pytest.raises(ValueError, match='readme.txt is not an image'):
        _predict(cfg, ck, '--img-dir', notes, '--out', out)
    os.remove(notes / 'readme.txt')
    (notes / 'b.png').write_text('not a png')  # decodes only mid-run
    with pytest.raises(ValueError, match=r'b.png: could not be read'):
        _predict(cfg, ck, '--img-dir', notes, '--out', out)
    with pytest.raises(ValueError, match=r'src.pth does not fit the '
                       r'config .*mic_dual_aug.py'):
        _predict(cfg, ws['ck']['src'], '--img-dir', ws['img_dir'],
                 '--out', out)
    other = _checkpoint(_cfg('mic_dual_aug', ws['root']),
                        str(tmp_path / 'other.pth'), 0,
                        classes=CLASSES[::-1])
    with pytest.raises(ValueError, match=r'model 2 \(.*other.pth\) '
                       r'predicts the classes'):
        _predict(cfg, ck, cfg, other, '--img-dir', ws['img_dir'], '--out',
                 out)
    with pytest.raises(ValueError, match=r'--weights: 3 weights .* for 2 '
                       'models'):
        _predict(cfg, ck, cfg, ck, '--img-dir', ws['img_dir'], '--out', out,
                 '--weights', 1, 2, 3)
    assert sorted(os.listdir(tmp_path)) == ['empty', 'notes', 'other.pth']
