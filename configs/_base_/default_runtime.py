# Runtime shared by the segmentation configs (mmseg scope, mmplugins loaded).
default_scope = 'mmseg'
custom_imports = dict(imports=['mmplugins'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # mmplugins.compat switches nccl to gloo when there is no GPU
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
# Logged scalars matching mean_pattern are the mean over the last window_size
# (10) iterations, the others the current iteration's value. mmengine's
# default pattern averages losses and times; the UDA segmentors' confident
# pseudo-label fraction (`pseudo_weight`, `masked.pseudo_weight`) is added:
# one batch holds only a few target crops, so its current value is noisy.
# (mmcv 1.x, which the DAFormer/MIC reference ran
# on, averaged every logged variable over the logging interval.)
log_processor = dict(
    by_epoch=False,
    window_size=10,
    mean_pattern=r'.*(loss|time|data_time|grad_norm|pseudo_weight).*')
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
tta_model = dict(type='SegTTAModel')
# exact --resume (main-process RNG reseeded from the position in the data
# stream; see docs/reliability.md)
custom_hooks = [dict(type='ExactResumeHook')]
