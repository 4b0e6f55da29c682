"""Reference semantics of DACS / DAFormer / MIC as pure functions."""
import math

import pytest
import torch

from mmplugins.models.uda.feature_distance import (downscale_label_ratio,
                                                   masked_feat_dist)
from mmplugins.models.uda.masking_consistency import block_mask, mask_image
from mmplugins.models.uda.utils import (class_mix_masks, ema_alpha,
                                        ema_update, one_mix,
                                        pseudo_label_and_weight,
                                        strong_transform)


def test_ema_alpha_ramp():
    assert ema_alpha(0) == 0.0
    assert ema_alpha(1) == pytest.approx(0.5)
    assert ema_alpha(9) == pytest.approx(0.9)
    assert ema_alpha(999) == pytest.approx(0.999)
    assert ema_alpha(10**6) == 0.999  # capped
    assert ema_alpha(5, alpha=0.5) == 0.5
    with pytest.raises(ValueError, match='iteration'):
        ema_alpha(-1)


def test_ema_update_averages_params_buffers_only_on_request():
    t = torch.nn.BatchNorm1d(2)
    s = torch.nn.BatchNorm1d(2)
    with torch.no_grad():
        t.weight.fill_(1.0)
        s.weight.fill_(3.0)
        t.running_mean.fill_(-2.0)
        s.running_mean.fill_(7.0)
    # reference (DACS _update_ema): parameters only
    ema_update(t, s, alpha=0.75)
    assert torch.allclose(t.weight, torch.full((2, ), 0.75 * 1 + 0.25 * 3))
    assert torch.equal(t.running_mean, torch.full((2, ), -2.0))
    ema_update(t, s, alpha=0.75, copy_buffers=True)
    assert torch.allclose(t.weight,
                          torch.full((2, ), 0.75 * 1.5 + 0.25 * 3))
    assert torch.equal(t.running_mean, torch.full((2, ), 7.0))


def test_pseudo_weight_without_threshold_is_one_per_pixel():
    """The reference's MIC teacher with mask_pseudo_threshold=None: weight 1
    everywhere, then the margins / valid mask."""
    logits = torch.randn(2, 3, 6, 5) * 0.01  # nowhere confident
    label, w, s = pseudo_label_and_weight(logits, None, ignore_top=1,
                                          ignore_bottom=2)
    assert s.item() == 1.0
    assert torch.equal(label, logits.argmax(1))
    expected = torch.ones(2, 6, 5)
    expected[:, :1] = 0
    expected[:, -2:] = 0
    assert torch.equal(w, expected)
    valid = torch.rand(2, 6, 5) > 0.5
    _, w, _ = pseudo_label_and_weight(logits, None, valid_mask=valid)
    assert torch.equal(w, valid.float())


def test_pseudo_weight_is_one_scalar_for_the_whole_batch():
    """Batch of 2 with different confident shares (3/4 and 1/4): the
    reference's weight is the batch's share, 4/8, on every pixel of both
    images -- not each image's own share."""
    p = torch.tensor([[[0.99, 0.99], [0.99, 0.5]],
                      [[0.99, 0.6], [0.7, 0.5]]])
    logits = torch.stack([torch.log(p), torch.log(1 - p)], 1)
    _, w, s = pseudo_label_and_weight(logits, 0.968)
    assert s.item() == pytest.approx(0.5)
    assert torch.allclose(w, torch.full((2, 2, 2), 0.5))


def test_pseudo_weight_is_one_scalar_fraction_of_confident_pixels():
    # 4 pixels: probs of the max class 0.99, 0.99, 0.9, 0.5 -> 2/4 >= 0.968
    logits = torch.zeros(1, 2, 2, 2)
    p = torch.tensor([[0.99, 0.99], [0.9, 0.5]])
    logits[0, 0] = torch.log(p)
    logits[0, 1] = torch.log(1 - p)
    label, weight, scalar = pseudo_label_and_weight(logits, 0.968)
    assert scalar.item() == pytest.approx(0.5)
    assert torch.all(weight == 0.5)
    assert label.tolist() == [[[0, 0], [0, 0]]]  # 0.5 ties -> first class


def test_pseudo_weight_margins():
    logits = torch.randn(2, 3, 10, 12) * 10
    _, w, s = pseudo_label_and_weight(logits, 0.0, ignore_top=2,
                                      ignore_bottom=3)
    assert s.item() == 1.0
    assert torch.all(w[:, :2] == 0) and torch.all(w[:, -3:] == 0)
    assert torch.all(w[:, 2:7] == 1)
    # dataset-level mask (HRDA crop_pseudo_margins): multiplied in after
    # the scalar, which still counts every pixel
    valid = torch.zeros(2, 10, 12, dtype=torch.bool)
    valid[:, 1:-1, 2:-3] = True
    _, w, s = pseudo_label_and_weight(logits, 0.0, valid_mask=valid)
    assert s.item() == 1.0
    assert torch.equal(w, valid.float())
    _, w, _ = pseudo_label_and_weight(logits, 0.0, valid_mask=valid[:, None])
    assert torch.equal(w, valid.float())
    with pytest.raises(ValueError, match='valid_mask has shape'):
        pseudo_label_and_weight(logits, valid_mask=valid[:, :5])
    with pytest.raises(ValueError, match='cannot be combined'):
        pseudo_label_and_weight(logits, ignore_bottom=1, valid_mask=valid)


@pytest.mark.parametrize('n_classes', [1, 2, 3, 5, 8])
def test_class_mix_sample_pool_takes_ceil_half_of_own_classes(n_classes):
    lbl = torch.arange(n_classes).repeat_interleave(4).view(1, -1)
    lbl = torch.cat([lbl, torch.full((1, 4), 255)], dim=1)  # + ignore
    lbl = lbl[None].expand(3, -1, -1).clone()
    masks = class_mix_masks(lbl, generator=torch.Generator().manual_seed(0),
                            pool='sample')
    assert masks.shape == (3, 1, 1, lbl.shape[-1])
    for i in range(3):
        chosen = torch.unique(lbl[i][masks[i, 0] > 0])
        assert len(chosen) == math.ceil(n_classes / 2)
        assert 255 not in chosen.tolist()
        # whole classes are pasted, never parts of one
        for c in chosen:
            assert torch.all(masks[i, 0][lbl[i] == c] == 1)


def test_one_mix():
    m = torch.tensor([[[1.0, 0.0]]])
    out = one_mix(m, torch.full((1, 3, 1, 2), 5.0), torch.zeros(1, 3, 1, 2))
    assert out[0, :, 0, 0].tolist() == [5, 5, 5]
    assert out[0, :, 0, 1].tolist() == [0, 0, 0]


def test_block_mask_ratio_and_blocks():
    g = torch.Generator().manual_seed(0)
    m = block_mask((64, 3, 256, 512), block_size=32, mask_ratio=0.7,
                   generator=g)
    masked_fraction = 1 - m.mean().item()
    assert abs(masked_fraction - 0.7) < 0.02  # 8192 blocks
    # constant inside each 32x32 block
    blocks = m.view(64, 1, 8, 32, 16, 32)
    assert torch.all(blocks.amax((3, 5)) == blocks.amin((3, 5)))
    img = torch.ones(64, 3, 256, 512)
    assert torch.equal(mask_image(img, m), img * m)
    with pytest.raises(ValueError, match='mask_ratio'):
        block_mask((1, 3, 8, 8), 4, 1.5)
    with pytest.raises(ValueError, match='mask_block_size'):
        block_mask((1, 3, 8, 8), 0)


def test_strong_transform_keeps_normalisation_and_changes_pixels():
    torch.manual_seed(0)
    mean = torch.tensor([100.0, 110, 120]).view(1, 3, 1, 1)
    std = torch.tensor([50.0, 55, 60]).view(1, 3, 1, 1)
    raw = torch.rand(4, 3, 32, 32) * 255
    norm = (raw - mean) / std
    g = torch.Generator().manual_seed(1)
    out = strong_transform(norm, mean, std, 0.0, 0.0, blur=False, generator=g)
    assert torch.allclose(out, norm.clamp((0 - mean) / std,
                                          (255 - mean) / std), atol=1e-4)
    out = strong_transform(norm, mean, std, 0.2, 1.0, blur=True,
                           blur_prob=1.0, generator=g)
    assert out.shape == norm.shape and not torch.allclose(out, norm)
    back = out * std + mean
    assert back.min() >= -1e-3 and back.max() <= 255 + 1e-3


def test_downscale_label_ratio_and_feat_dist():
    gt = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    gt[..., :2, :2] = 3              # top-left cell: all class 3
    gt[..., :2, 2:] = 255            # top-right cell: ignore
    gt[..., 2:, 2:] = torch.tensor([[1, 1], [1, 2]])  # 75 % class 1
    small = downscale_label_ratio(gt, 2, 0.75, num_classes=4)
    assert small[0, 0].tolist() == [[3, 255], [0, 1]]
    small = downscale_label_ratio(gt, 2, 0.8, num_classes=4)
    assert small[0, 0, 1, 1].item() == 255
    f1 = torch.zeros(1, 2, 2, 2)
    f2 = torch.zeros(1, 2, 2, 2)
    f2[0, :, 0, 0] = torch.tensor([3.0, 4.0])  # distance 5 at (0,0)
    assert masked_feat_dist(f1, f2).item() == pytest.approx(5 / 4)
    mask = torch.tensor([[[[True, False], [False, False]]]])
    assert masked_feat_dist(f1, f2, mask).item() == pytest.approx(5.0)
    empty = torch.zeros_like(mask)
    assert masked_feat_dist(f1, f2, empty).item() == 0.0
