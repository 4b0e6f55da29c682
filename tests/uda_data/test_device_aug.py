"""Dual-branch / fisheye augmentation on the device vs the CPU transforms.

Same sampled parameters -> same image within interpolation tolerance and
the identical label map; unsupported transforms -> one clear error; device
aug off -> the preprocessor output is bit-identical to mmseg's per group.
"""
import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from albumentations.augmentations.geometric import functional as AF
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmplugins.datasets.transforms.dual_branch import (DualBranchAug,
                                                       ellipse_mask,
                                                       mix_outside_ellipse)
from mmplugins.datasets.transforms.fisheye import FisheyeDistortion
from mmplugins.models.uda.batch_dual_branch_aug import (BatchDualBranchAug,
                                                        affine_matrix)
from mmplugins.models.uda.batch_fisheye import BatchFisheyeDistortion
from mmplugins.models.uda.device_aug import build_device_aug
from mmplugins.models.uda.uda_data_preprocessor import UDADataPreProcessor

AFFINE = dict(scale=(0.85, 1.15), translate_percent=(-0.05, 0.05),
              rotate=(-10, 10), shear=(-5, 5), p=1.0)
ELASTIC = dict(alpha=40, sigma=8, p=1.0)
H, W = 96, 160


def _batch(n=3, seed=0):
    rng = np.random.default_rng(seed)
    # smooth image (interpolation tolerance is about local steps) + labels
    base = cv2.resize(rng.integers(0, 255, (12, 20, 3)).astype(np.uint8),
                      (W, H), interpolation=cv2.INTER_CUBIC)
    imgs = np.stack([np.roll(base, 7 * i, axis=1) for i in range(n)])
    segs = rng.integers(0, 12, (n, H // 8, W // 8)).astype(np.uint8)
    segs = np.stack([cv2.resize(s, (W, H), interpolation=cv2.INTER_NEAREST)
                     for s in segs])
    return imgs, segs


def _t(imgs, segs):
    return (torch.from_numpy(imgs).permute(0, 3, 1, 2).float(),
            torch.from_numpy(segs))


def _cpu_view(img, seg, params, i, device_aug, background=None):
    """The CPU path for sample i with the device's drawn parameters, made
    with the CPU transforms' own apply functions (albumentations, cv2)."""
    cpu = device_aug.cpu
    affine, elastic = cpu._albu.transforms
    m = params.affine[i].numpy()
    out = affine.apply(img, matrix=m, output_shape=(H, W))
    lab = affine.apply_to_mask(seg, matrix=m, output_shape=(H, W))
    mx = params.elastic_map_x[i].numpy()
    my = params.elastic_map_y[i].numpy()
    out = elastic.apply(out, map_x=mx, map_y=my)
    lab = elastic.apply_to_mask(lab, map_x=mx, map_y=my)
    if params.fisheye is not None:
        out, (lab, ) = cpu._fisheye.warp(out, [lab], params.fisheye[i])
    axes = params.ellipse_axes
    if axes is not None and not np.isnan(axes[i, 0].item()):
        bg = cpu.img_fill if background is None else background
        out, lab = mix_outside_ellipse(
            out, lab, bg, ellipse_mask(H, W, tuple(axes[i].tolist())),
            cpu.ellipse_label)
    return out, lab


def test_affine_matrix_equals_albumentations():
    rng = np.random.default_rng(0)
    for _ in range(5):
        sx, sy, rot = rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2), \
            rng.uniform(-10, 10)
        tx, ty = float(int(rng.uniform(-8, 8))), float(int(rng.uniform(-5,
                                                                        5)))
        shx, shy = -rng.uniform(-5, 5), -rng.uniform(-5, 5)
        ref = AF.create_affine_transformation_matrix(
            dict(x=tx, y=ty), dict(x=shx, y=shy), dict(x=sx, y=sy), rot,
            AF.center((H, W)))
        f = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
        got = affine_matrix(f(sx), f(sy), f(tx), f(ty), f(shx), f(shy),
                            torch.deg2rad(f(rot % 360)), H, W)[0].numpy()
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize('extra', [
    dict(),
    dict(fisheye=dict(strength=(0.3, 0.6))),
    dict(fisheye=dict(strength=0.5), ellipse_prob=1.0),
])
def test_same_params_same_view_and_identical_labels(extra):
    torch.manual_seed(0)
    np.random.seed(0)
    aug = BatchDualBranchAug(affine=AFFINE, elastic=ELASTIC, **extra)
    imgs, segs = _batch()
    img_t, seg_t = _t(imgs, segs)
    params = aug.get_params(len(imgs), H, W)
    dist_img, dist_seg = aug.apply(img_t, seg_t, params)
    assert dist_img.shape == img_t.shape and dist_seg.dtype == torch.uint8
    for i in range(len(imgs)):
        ref_img, ref_seg = _cpu_view(imgs[i], segs[i], params, i, aug)
        # labels: nearest with OpenCV's own rounding -> identical
        np.testing.assert_array_equal(dist_seg[i].numpy(), ref_seg)
        got = dist_img[i].permute(1, 2, 0).numpy()
        diff = np.abs(got - ref_img.astype(np.float32))
        # interpolation tolerance: OpenCV's 1/32-pixel fixed point + uint8
        # rounding per stage, on a smooth image
        assert np.median(diff) <= 1.0, np.median(diff)
        assert np.percentile(diff, 99) <= 8, np.percentile(diff, 99)
    # the view really is distorted, with ignore where it left the image
    assert (dist_seg == 255).any() and not torch.equal(dist_seg, seg_t)
    if extra.get('ellipse_prob'):
        corner = dist_seg[:, 0, 0]
        assert (corner == 255).all()


def test_label_ids_are_a_subset_plus_ignore():
    torch.manual_seed(1)
    aug = BatchDualBranchAug(affine=AFFINE, elastic=ELASTIC,
                             fisheye=dict(strength=0.5))
    imgs, segs = _batch(seed=1)
    _, dist_seg = aug(*_t(imgs, segs))
    assert set(dist_seg.unique().tolist()) <= set(np.unique(segs)) | {255}


def test_distributions_match_the_cpu_transform():
    """Same ranges: the device draws of scale/rotation/shear, read back from
    the matrices, cover the configured ranges like albumentations'."""
    torch.manual_seed(0)
    aug = BatchDualBranchAug(affine=AFFINE, elastic=None)
    p = aug.get_params(4000, H, W)
    m = p.affine
    det = (m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] * m[:, 1, 0]).numpy()
    a = A.Affine(**AFFINE)
    ref = []
    for s in range(4000):
        a.set_random_seed(s)
        rm = a.get_params_dependent_on_data({'shape': (H, W)}, {})['matrix']
        ref.append(np.linalg.det(rm[:2, :2]))
    ref = np.asarray(ref)
    for q in (5, 25, 50, 75, 95):
        assert abs(np.percentile(det, q) - np.percentile(ref, q)) < 0.02
    # translation: whole pixels within +-5 % of the size, as albumentations
    dev_tx = (m[:, 0, 2] - (W / 2 - .5) + (m[:, 0, 0] * (W / 2 - .5) +
                                            m[:, 0, 1] * (H / 2 - .5)))
    assert dev_tx.abs().max() <= int(0.05 * W) + 1e-9


def _lag_corr(dx, k=8):
    """Correlation of the x displacement with itself k pixels to the right
    (how smooth the field is: set by sigma, not by alpha)."""
    return np.corrcoef(dx[:, :, :-k].ravel(), dx[:, :, k:].ravel())[0, 1]


def test_elastic_field_statistics_match_albumentations():
    """32 fields each: the mean displacement (amplitude, ~1/sigma) within
    8 % and the lag-8 correlation (smoothness) within 0.03 of
    albumentations'. Measured spread over seeds: amplitude +-4 %,
    correlation +-0.01; a 1.3x sigma moves them by -17 % and +0.08, 1/1.3x
    by +20 % and -0.11, so a wrong sigma fails."""
    torch.manual_seed(0)
    aug = BatchDualBranchAug(affine=None, elastic=ELASTIC)
    p = aug.get_params(32, H, W)
    dx = (p.elastic_map_x - torch.arange(W).float()).numpy()
    e = A.ElasticTransform(**ELASTIC)
    ref = []
    for s in range(32):
        e.set_random_seed(s)
        mx = e.get_params_dependent_on_data({'shape': (H, W)}, {})['map_x']
        ref.append(mx - np.arange(W))
    ref = np.stack(ref)
    assert np.abs(dx).mean() == pytest.approx(np.abs(ref).mean(), rel=0.08)
    assert abs(_lag_corr(dx) - _lag_corr(ref)) < 0.03


def test_fisheye_device_equals_cpu_transform():
    np.random.seed(0)
    dev = BatchFisheyeDistortion(strength=(0.3, 0.6))
    imgs, segs = _batch()
    params = dev.get_params(len(imgs))
    out, lab = dev.apply(*_t(imgs, segs), params)
    cpu = FisheyeDistortion(strength=(0.3, 0.6))
    for i in range(len(imgs)):
        ref_img, (ref_seg, ) = cpu.warp(imgs[i], [segs[i]], params[i])
        np.testing.assert_array_equal(lab[i].numpy(), ref_seg)
        diff = np.abs(out[i].permute(1, 2, 0).numpy() - ref_img)
        assert np.percentile(diff, 99) <= 3


def test_seeded_device_views_are_reproducible():
    aug = BatchDualBranchAug(affine=AFFINE, elastic=ELASTIC,
                             ellipse_prob=0.5)
    imgs, segs = _batch()
    outs = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        outs.append(aug(*_t(imgs, segs)))
    assert torch.equal(outs[0][0], outs[1][0])
    assert torch.equal(outs[0][1], outs[1][1])
    assert not torch.equal(outs[0][1], outs[2][1])


@pytest.mark.parametrize('cfg, match', [
    (dict(type='PhotoMetricDistortion'),
     r"'PhotoMetricDistortion' has no device implementation.*keep "
     r"dict\(type='PhotoMetricDistortion'"),
    (dict(type='DualBranchAug', affine=dict(AFFINE, fit_output=True)),
     r'affine.fit_output=True is not supported on the device.*CPU'),
    (dict(type='DualBranchAug', elastic=dict(ELASTIC, approximate=True)),
     r'elastic.approximate=True is not supported.*DualBranchAug'),
    (dict(type='DualBranchAug', ellipse_prob=2),
     r'ellipse_prob=2'),
])
def test_unsupported_device_transform_is_one_clear_error(cfg, match):
    with pytest.raises(ValueError, match=match):
        build_device_aug([cfg])


def _uda_batch(n=2, seed=0, with_dist=False):
    imgs, segs = _batch(n, seed)
    data = dict(inputs=[], data_samples=[], target_inputs=[],
                target_data_samples=[])
    for i in range(n):
        s = SegDataSample(metainfo=dict(img_shape=(H, W), ori_shape=(H, W),
                                        pad_shape=(H, W)))
        s.gt_sem_seg = PixelData(data=torch.from_numpy(segs[i])[None])
        data['inputs'].append(torch.from_numpy(imgs[i]).permute(2, 0, 1))
        data['data_samples'].append(s)
        t = SegDataSample(metainfo=dict(img_shape=(H, W), ori_shape=(H, W),
                                        pad_shape=(H, W)))
        data['target_inputs'].append(
            torch.from_numpy(imgs[-1 - i]).permute(2, 0, 1).contiguous())
        data['target_data_samples'].append(t)
    if with_dist:
        data['dist_inputs'] = [x.flip(-1) for x in data['inputs']]
        data['dist_data_samples'] = [s.clone() for s in data['data_samples']]
    return data


PRE = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
           bgr_to_rgb=True, size=(H, W), pad_val=0, seg_pad_val=255)


def test_device_aug_off_is_bit_identical_to_mmseg_per_group():
    from mmseg.models.data_preprocessor import SegDataPreProcessor
    ours = UDADataPreProcessor(**PRE)
    ref = SegDataPreProcessor(**PRE)
    data = _uda_batch(with_dist=True)
    out = ours(data, training=True)
    for prefix in ('', 'dist_', 'target_'):
        group = dict(inputs=data[prefix + 'inputs'],
                     data_samples=data[prefix + 'data_samples'])
        r = ref(group, training=True)
        assert torch.equal(out[prefix + 'inputs'], r['inputs'])
    # and the same preprocessor built with device_aug=None is the default
    assert UDADataPreProcessor(device_aug=None, **PRE).device_aug == []


def test_device_aug_gives_the_segmentor_the_cpu_batch_structure():
    torch.manual_seed(0)
    pre_cpu = UDADataPreProcessor(**PRE)
    pre_dev = UDADataPreProcessor(
        device_aug=[dict(type='DualBranchAug', affine=AFFINE,
                         elastic=ELASTIC, ellipse_prob=0.5)], **PRE)
    cpu = pre_cpu(_uda_batch(with_dist=True), training=True)
    dev = pre_dev(_uda_batch(), training=True)
    assert sorted(cpu) == sorted(dev)
    for key in cpu:
        if torch.is_tensor(cpu[key]):
            assert dev[key].shape == cpu[key].shape
            assert dev[key].dtype == cpu[key].dtype
    for a, b in zip(cpu['dist_data_samples'], dev['dist_data_samples']):
        assert a.gt_sem_seg.data.shape == b.gt_sem_seg.data.shape
        assert a.gt_sem_seg.data.dtype == b.gt_sem_seg.data.dtype
        assert set(a.keys()) == set(b.keys())
    # the source view is untouched by the DualBranchAug device step
    assert torch.equal(dev['inputs'], cpu['inputs'])
    # val/test batches: no augmentation
    plain = dict(inputs=_uda_batch()['inputs'],
                 data_samples=_uda_batch()['data_samples'])
    assert 'dist_inputs' not in pre_dev(plain, training=False)


def test_device_aug_and_cpu_dual_branch_together_is_an_error():
    pre = UDADataPreProcessor(
        device_aug=[dict(type='DualBranchAug')], **PRE)
    with pytest.raises(ValueError, match='remove DualBranchAug from the CPU'):
        pre(_uda_batch(with_dist=True), training=True)


def test_cpu_background_reaches_the_device_view(tmp_path):
    pre = UDADataPreProcessor(
        device_aug=[dict(type='DualBranchAug', affine=None, elastic=None,
                         ellipse_prob=0.5, target_img_dir=str(tmp_path))],
        **PRE)
    data = _uda_batch()
    with pytest.raises(ValueError, match="add dict\\(type='DualBranch"):
        pre(_uda_batch(), training=True)
    bg = torch.full((3, H, W), 200, dtype=torch.uint8)
    data['data_samples'][0].set_metainfo(dict(dist_ellipse=True))
    data['data_samples'][0].dist_background = PixelData(data=bg)
    data['data_samples'][1].set_metainfo(dict(dist_ellipse=False))
    out = pre(data, training=True)
    d = out['dist_data_samples']
    assert (d[0].gt_sem_seg.data[0, 0, 0] == 255).item()  # corner cut
    assert not (d[1].gt_sem_seg.data == 255).any()        # not mixed
    # corner pixel = normalised background value 200 (BGR -> RGB)
    mean = torch.tensor(PRE['mean'])
    std = torch.tensor(PRE['std'])
    expect = (200 - mean) / std
    torch.testing.assert_close(out['dist_inputs'][0][:, 0, 0], expect)
    assert 'dist_background' not in out['data_samples'][0]


def test_dual_branch_background_is_packed_into_the_source_sample(tmp_path):
    from mmplugins.datasets.transforms.dual_branch_background import \
        DualBranchBackground
    from mmplugins.datasets.transforms.pack_dual_branch import \
        PackDualBranchSegInputs
    target = np.full((40, 80, 3), 77, np.uint8)
    cv2.imwrite(str(tmp_path / 't.png'), target)
    imgs, segs = _batch(1)
    res = dict(img=imgs[0], gt_seg_map=segs[0], seg_fields=['gt_seg_map'],
               img_shape=(H, W), ori_shape=(H, W))
    np.random.seed(0)
    out = DualBranchBackground(target_img_dir=str(tmp_path),
                               ellipse_prob=1.0)(dict(res))
    assert out['dist_ellipse'] is True
    assert out['dist_background'].shape == (H, W, 3)
    packed = PackDualBranchSegInputs()(out)
    s = packed['data_samples']
    assert s.metainfo['dist_ellipse'] is True
    assert s.dist_background.data.shape == (3, H, W)
    assert (s.dist_background.data == 77).all()
    assert 'dist_inputs' not in packed
    off = DualBranchBackground(target_img_dir=str(tmp_path),
                               ellipse_prob=0.0)(dict(res))
    assert off['dist_ellipse'] is False and 'dist_background' not in off
    with pytest.raises(ValueError, match='ellipse_prob=1.5'):
        DualBranchBackground(target_img_dir=str(tmp_path), ellipse_prob=1.5)


def test_device_config_end_to_end_on_demo_data(tmp_path):
    """configs/mic_dual_aug_device.py: the loader packs no distortion view,
    the preprocessor makes it; same keys/shapes as configs/mic_dual_aug.py.
    Uses a throwaway copy of the demo layout (a few images)."""
    import copy
    import os.path as osp

    from mmengine.config import Config
    from mmengine.registry import MODELS
    from mmengine.runner import Runner

    from _uda_data_fixtures import write_split
    root = str(tmp_path / 'demo')
    write_split(root, 'train_source', 4)
    write_split(root, 'train_target', 3)
    here = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    batches = {}
    for name in ('mic_dual_aug', 'mic_dual_aug_device'):
        cfg = Config.fromfile(osp.join(here, 'configs', name + '.py'))
        dl = copy.deepcopy(cfg.train_dataloader)
        dl.num_workers, dl.persistent_workers = 0, False
        dl.dataset.rare_class_sampling = None
        for part in ('source', 'target'):
            dl.dataset[part].data_root = root
            for t in dl.dataset[part].pipeline:
                if 'data_root' in t:
                    t['data_root'] = root
                if t['type'] == 'RandomCrop':
                    t['crop_size'] = (32, 48)
        data = next(iter(Runner.build_dataloader(dl, seed=0)))
        assert ('dist_inputs' in data) == (name == 'mic_dual_aug')
        pre = MODELS.build(dict(cfg.model.data_preprocessor, size=(32, 48)))
        batches[name] = pre(data, training=True)
    cpu, dev = batches['mic_dual_aug'], batches['mic_dual_aug_device']
    assert sorted(cpu) == sorted(dev)
    assert dev['dist_inputs'].shape == cpu['dist_inputs'].shape
    labels = torch.cat([s.gt_sem_seg.data for s in dev['dist_data_samples']])
    assert set(labels.unique().tolist()) <= {0, 1, 2, 3, 255}
