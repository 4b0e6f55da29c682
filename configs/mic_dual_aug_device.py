# configs/mic_dual_aug.py with the distortion view made on the training
# device (issue #15): the dataloader workers only decode, resize, crop, flip
# (and load the ellipse background image); the Affine + Elastic warps and the
# ellipse mix of DualBranchAug run batched in the data preprocessor, with the
# same arguments (moved unchanged) and the same distributions. The segmentor
# receives the same batch (inputs, dist_inputs, dist_data_samples, target_*).
#   python tools/train.py configs/mic_dual_aug_device.py
# The same switch for any config: take dict(type='DualBranchAug', ...) out of
# the source pipeline, put dict(type='DualBranchBackground', target_img_dir=
# ..., ellipse_prob=..., data_root=...) in its place (only when it has a
# target_img_dir), and list the DualBranchAug dict in
# model.data_preprocessor.device_aug. See docs/dual_branch.md.
_base_ = ['./mic_dual_aug.py']


def _dual_branch(pipeline):
    """The DualBranchAug config of a pipeline."""
    return [t for t in pipeline if t['type'] == 'DualBranchAug'][0]


def _cpu_part(pipeline):
    """The pipeline with DualBranchAug replaced by its CPU part."""
    out = []
    for t in pipeline:
        if t['type'] == 'DualBranchAug':
            if t.get('target_img_dir') is None:
                continue  # ellipse filled with img_fill: nothing to load
            t = dict(type='DualBranchBackground',
                     target_img_dir=t['target_img_dir'],
                     ellipse_prob=t.get('ellipse_prob', 0.0),
                     data_root=t.get('data_root'))
        out.append(t)
    return out


model = dict(data_preprocessor=dict(
    device_aug=[_dual_branch(_base_.source_uda_pipeline)]))
train_dataloader = dict(
    dataset=dict(source=dict(pipeline=_cpu_part(_base_.source_uda_pipeline))))
