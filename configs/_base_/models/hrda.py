# HRDA's multi-resolution student (Hoyer et al., ECCV 2022), as the
# reference's configs set it: a config that inherits this next to a DAFormer
# UDA recipe turns its student into HRDA with
#   model = dict(segmentor=hrda_segmentor)
# and overrides what its scale needs (hr_crop_size, test_cfg, ...).
hrda_segmentor = dict(
    type='HRDAEncoderDecoder',
    # detail at full resolution, context at 0.5
    scales=[1, 0.5],
    # detail crop: half of the 1024 training crop's side
    hr_crop_size=(512, 512),
    # ImageNet feature distance on the context features (as DAFormer)
    feature_scale=0.5,
    # output stride 4 x context down-scaling 2: detail crops land on whole
    # context output pixels
    crop_coord_divisible=8,
    # pseudo-labels (and test) from overlapping detail crops, batched
    hr_slide_inference=True,
    decode_head=dict(
        type='HRDAHead',
        single_scale_head='DAFormerHead',
        # one scale-attention map per class
        attention_classwise=True,
        # detail loss weight lambda_d = 0.1
        hr_loss_weight=0.1),
    # test: fused 1024x1024 windows with stride 512, all windows batched
    test_cfg=dict(mode='slide', crop_size=(1024, 1024), stride=(512, 512),
                  batch_size=None))
