"""The converter's key tables, as data: which reference keys map to which
mmplugins keys, which are metadata, which sizes a backbone name stands for.
The sections (``*_section.py``) read these; a new reference key with the
same meaning is one line here."""
import os.path as osp

#: the repository root (configs/_base_ of a converted config live there)
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE_RUNTIME = osp.join(REPO_ROOT, 'configs', '_base_', 'default_runtime.py')
BASE_SCHEDULE = osp.join(REPO_ROOT, 'configs', '_base_', 'schedules',
                         'schedule_40k.py')

#: MiT sizes as in mmseg 1.x's configs/segformer/segformer_mit-bX_*.py
MIT_SIZES = {
    'mit_b0': dict(embed_dims=32, num_layers=[2, 2, 2, 2]),
    'mit_b1': dict(embed_dims=64, num_layers=[2, 2, 2, 2]),
    'mit_b2': dict(embed_dims=64, num_layers=[3, 4, 6, 3]),
    'mit_b3': dict(embed_dims=64, num_layers=[3, 4, 18, 3]),
    'mit_b4': dict(embed_dims=64, num_layers=[3, 8, 27, 3]),
    'mit_b5': dict(embed_dims=64, num_layers=[3, 6, 40, 3]),
}
MIT_HEADS = [1, 2, 5, 8]

#: UDA keys copied under the same name and meaning
UDA_COPIED = (
    'alpha', 'pseudo_threshold', 'pseudo_weight_ignore_top',
    'pseudo_weight_ignore_bottom', 'imnet_feature_dist_lambda',
    'imnet_feature_dist_classes', 'imnet_feature_dist_scale_min_ratio',
    'mix', 'blur', 'color_jitter_strength', 'color_jitter_probability',
    'mask_mode', 'mask_alpha', 'mask_pseudo_threshold', 'mask_lambda',
    'mask_generator')

#: keys the reference's launcher (run_experiments.py / experiments.py)
#: adds for bookkeeping: they change nothing about the run
METADATA = {
    'name': 'the run name (the work dir names the mmplugins run)',
    'exp': 'the experiment id of experiments.py',
    'n_gpus': 'the GPU count is the launcher\'s (tools/dist_train.sh)',
    'gpu_model': 'the cluster GPU type the reference asked for',
    'gpu_ids': 'device choice is the launcher\'s',
    'use_ddp_wrapper': 'mmplugins always uses its UDA DDP wrapper',
    'git_rev': 'the reference commit the run was launched from',
}
#: prefixes of more launcher metadata (name_architecture, name_encoder, ...)
METADATA_PREFIXES = ('name_',)

#: keys of the reference's ``uda`` dict that its code never reads
UDA_UNREAD = {
    'imnet_feature_dist_scale_method':
        'set by experiments.py but read nowhere in the reference code',
}

HELPERS = ('norm_cfg', 'img_norm_cfg', 'crop_size', 'dataset_type',
           'data_root')

#: HRDAEncoderDecoder's keys (model.<key> in the reference)
HRDA_SEG_KEYS = ('scales', 'hr_crop_size', 'feature_scale',
                 'crop_coord_divisible', 'hr_slide_inference',
                 'hr_slide_overlapping', 'blur_hr_crop')
#: HRDAHead's keys copied under the same name and meaning
HRDA_HEAD_COPIED = ('attention_classwise', 'hr_loss_weight',
                    'lr_loss_weight', 'attention_embed_dim',
                    'fixed_attention')
#: HRDA single_scale_head -> its output stride (the reference's
#: ``HRDAHead.os``): crops must land on whole context output pixels
HRDA_OUTPUT_STRIDES = {'DAFormerHead': 4, 'DLV2Head': 8}

#: ResNet-family backbones (mmseg 0.x and 1.x register the same classes
#: with the same arguments) -> the keys copied under the same name
_RESNET_KEYS = ('depth', 'in_channels', 'stem_channels', 'base_channels',
                'num_stages', 'strides', 'dilations', 'out_indices',
                'style', 'frozen_stages', 'conv_cfg', 'norm_cfg',
                'norm_eval', 'multi_grid', 'contract_dilation', 'with_cp',
                'zero_init_residual')
RESNET_BACKBONES = {
    'ResNetV1c': _RESNET_KEYS,
    'ResNeXt': _RESNET_KEYS + ('groups', 'base_width'),
    'ResNeSt': _RESNET_KEYS + ('groups', 'base_width', 'radix',
                               'reduction_factor', 'avg_down_stride'),
}

#: mmseg heads the reference uses unchanged (upstream mmseg 0.x code, only
#: ``seg_weight`` added) and that mmseg 1.x has with the same arguments ->
#: their own keys (BaseDecodeHead's are copied for all)
MMSEG_HEADS = {
    'ISAHead': ('isa_channels', 'down_factor'),
    'DepthwiseSeparableASPPHead': ('dilations', 'c1_in_channels',
                                   'c1_channels'),
    'UPerHead': ('pool_scales', ),
    'DAHead': ('pam_channels', ),
}
BASE_HEAD_KEYS = ('in_channels', 'in_index', 'channels', 'dropout_ratio',
                  'num_classes', 'norm_cfg', 'act_cfg', 'conv_cfg',
                  'align_corners', 'ignore_index', 'input_transform',
                  'init_cfg')

#: reference dataset type -> mmseg 1.x / mmplugins type (same name, files,
#: suffixes and classes): GTA, SYNTHIA and ACDC are mmplugins', Cityscapes
#: and Dark Zurich mmseg 1.x's own
DATASET_TYPES = {'GTADataset': 'GTADataset',
                 'CityscapesDataset': 'CityscapesDataset',
                 'SynthiaDataset': 'SynthiaDataset',
                 'ACDCDataset': 'ACDCDataset',
                 'DarkZurichDataset': 'DarkZurichDataset'}

#: source dataset type -> the evaluator the papers report with it (the
#: reference prints the 19-class mIoU only): Synthia->Cityscapes adds
#: mIoU16 and mIoU13
SOURCE_EVALUATORS = {
    'SynthiaDataset': dict(type='SubsetIoUMetric', subsets='synthia'),
}

#: the reference's classifier init (mmseg 0.x BaseDecodeHead.init_weights:
#: normal_init(conv_seg, mean=0, std=0.01), bias 0); mmseg 1.x's default
#: init_cfg is the same Normal on conv_seg
DECODE_HEAD_INIT = dict(type='Normal', std=0.01, override=dict(name='conv_seg'))
