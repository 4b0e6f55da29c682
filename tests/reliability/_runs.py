"""Tiny training configs and run helpers for the reliability tests and
``bench/faults.py`` (three task families: MIC UDA segmentation, diet-sampler
detection, mask classification), on demo data small enough for a CPU.

Configs are the repository's own (``configs/mic_dual_aug.py``,
``configs/diet_det/stage1_diet.py``,
``configs/mask_cls/mask_label_head_mnv3_demo.py``) with only sizes, data
paths, logging and the reliability hooks changed.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PY = sys.executable
FAMILIES = ('seg', 'det', 'cls')


def make_data(root: str) -> Dict[str, str]:
    """Write the three demo datasets (tiny) under ``root`` once."""
    out = dict(seg=osp.join(root, 'seg'), det=osp.join(root, 'det'),
               cls=osp.join(root, 'cls'))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmds = dict(
        seg=['tools/make_demo_data.py', '--out', out['seg'],
             '--num-train-source', '8', '--num-val-source', '2',
             '--num-train-target', '8', '--num-val-target', '2',
             '--num-test', '1', '--height', '64', '--width', '128',
             '--workers', '1'],
        det=['tools/make_det_demo_data.py', '--out', out['det'],
             '--num-train', '24', '--num-val', '4', '--size', '64'],
        cls=['tools/make_mask_demo_data.py', '--out', out['cls'],
             '--num-persons', '5', '--eval-persons', '1', '--size', '32'])
    for fam, cmd in cmds.items():
        stamp = osp.join(out[fam], '.complete')
        if osp.exists(stamp):
            continue
        subprocess.run([PY] + cmd, cwd=REPO, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        open(stamp, 'w').close()
    return out


def _common(cfg, hooks: List[dict], ckpt_interval: int, by_epoch: bool):
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1,
                                    log_metric_by_epoch=False)
    cfg.default_hooks.checkpoint = dict(
        type='AtomicCheckpointHook', by_epoch=by_epoch,
        interval=ckpt_interval, max_keep_ckpts=2, save_last=True)
    cfg.default_hooks.pop('visualization', None)
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.val_dataloader = None
    cfg.val_cfg = None
    cfg.val_evaluator = None
    cfg.test_dataloader = None
    cfg.test_cfg = None
    cfg.test_evaluator = None
    cfg.custom_hooks = list(hooks)
    cfg.env_cfg = dict(cudnn_benchmark=False,
                       mp_cfg=dict(mp_start_method='fork',
                                   opencv_num_threads=1),
                       dist_cfg=dict(backend='gloo'))


def seg_config(data_root: str, max_iters: int, hooks: List[dict],
               ckpt_interval: int = 2, num_workers: int = 1):
    """MIC + dual branch (configs/mic_dual_aug.py) at 32x64 crops."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs/mic_dual_aug.py'))
    crop = (32, 64)
    cfg.model.data_preprocessor.size = crop
    cfg.model.mask_block_size = 8
    cfg.model.vis_interval = 0
    ds = cfg.train_dataloader.dataset
    for sub in (ds.source, ds.target):
        sub.data_root = data_root
        for t in sub.pipeline:
            if t['type'] == 'Resize':
                t['scale'] = (128, 64)
            if t['type'] == 'RandomCrop':
                t['crop_size'] = crop
            if t['type'] == 'DualBranchAug':
                t['data_root'] = data_root
                t['elastic'] = dict(alpha=10, sigma=4, p=1.0)
    ds.rare_class_sampling = dict(class_temp=0.01, min_pixels=20,
                                  min_crop_ratio=0.5)
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.num_workers = num_workers
    cfg.train_dataloader.persistent_workers = num_workers > 0
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                         val_interval=10**9)
    # the config's form (configs/_base_/schedules/schedule_2k.py): warm-up
    # and poly decay both from 0, multiplied; end is one past the last step
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=4 + 1),
        dict(type='PolyLR', eta_min=0.0, power=1.0, begin=0,
             end=max_iters + 1, by_epoch=False)]
    _common(cfg, hooks, ckpt_interval, by_epoch=False)
    return cfg


def hrda_config(data_root: str, max_iters: int, hooks: List[dict],
                ckpt_interval: int = 2, num_workers: int = 1):
    """MIC(HRDA) + dual branch (configs/mic_hrda.py): the demo's 64x128
    frames as the training crop, 32x32 detail crops, the same tiny
    schedule as :func:`seg_config`."""
    from mmengine.config import Config
    cfg = seg_config(data_root, max_iters, hooks, ckpt_interval, num_workers)
    hrda = Config.fromfile(osp.join(REPO, 'configs/mic_hrda.py'))
    crop = (64, 128)
    cfg.model.segmentor = hrda.model.segmentor
    cfg.model.segmentor.hr_crop_size = (32, 32)
    cfg.model.data_preprocessor.size = crop
    ds = cfg.train_dataloader.dataset
    for sub in (ds.source, ds.target):
        for t in sub.pipeline:
            if t['type'] == 'RandomCrop':
                t['crop_size'] = crop
    ds.rare_class_sampling.min_crop_ratio = 2.0
    return cfg


def det_config(data_root: str, max_epochs: int, hooks: List[dict],
               ckpt_interval: int = 1, num_workers: int = 0):
    """Diet-sampler RTMDet-tiny (configs/diet_det/stage1_diet.py), 64 px,
    epoch-based (the config's own loop)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs/diet_det/stage1_diet.py'))
    size = (64, 64)
    root = data_root.rstrip('/') + '/'
    for key in ('train_dataloader', ):
        dl = cfg[key]
        dl.dataset.data_root = root
        dl.batch_size = 4
        dl.num_workers = num_workers
        dl.persistent_workers = num_workers > 0
        for t in dl.dataset.pipeline:
            if 'scale' in t and t['type'] in ('RandomResize', 'Resize'):
                t['scale'] = size
            if t['type'] == 'RandomCrop':
                t['crop_size'] = size
            if t['type'] == 'Pad':
                t['size'] = size
    # a diet that keeps every image the tiny demo has a class of interest in
    cfg.train_dataloader.sampler.rules = [
        dict(any_of=['cigar', 'phone', 'eye_closed', 'mouth_opened'])]
    cfg.train_dataloader.sampler.default_keep = True
    cfg.train_dataloader.sampler.epoch_parts = 2
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                         val_interval=10**9)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=3)]
    _common(cfg, hooks, ckpt_interval, by_epoch=True)
    return cfg


def cls_config(data_root: str, max_iters: int, hooks: List[dict],
               ckpt_interval: int = 2, num_workers: int = 0):
    """Mask-label head MobileNetV3 (configs/mask_cls/...), 32 px,
    iteration-based with the class-balanced sampler."""
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/mask_cls/mask_label_head_mnv3_demo.py'))
    dl = cfg.train_dataloader
    dl.dataset.data_root = data_root
    dl.dataset.allow_empty_class = True  # a 5-person demo misses classes
    dl.batch_size = 8
    dl.num_workers = num_workers
    dl.persistent_workers = num_workers > 0
    for t in dl.dataset.pipeline:
        if t['type'] == 'Resize':
            t['scale'] = (32, 32)
    dl.sampler = dict(type='ClassBalancedSampler')
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                         val_interval=10**9)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=4)]
    cfg.pop('auto_scale_lr', None)
    _common(cfg, hooks, ckpt_interval, by_epoch=False)
    return cfg


BUILDERS = dict(seg=seg_config, det=det_config, cls=cls_config,
                hrda=hrda_config)


def write_config(cfg, path: str) -> str:
    os.makedirs(osp.dirname(path), exist_ok=True)
    cfg.dump(path)
    return path


def train(config: str, work_dir: str, resume: bool = False,
          timeout: int = 300, extra: Optional[List[str]] = None):
    """Run tools/train.py; returns the CompletedProcess (never raises)."""
    cmd = [PY, osp.join(REPO, 'tools/train.py'), config, '--work-dir',
           work_dir]
    if resume:
        cmd.append('--resume')
    cmd += extra or []
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHONHASHSEED='0')
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def losses(work_dir: str, key: str = 'loss') -> Dict[int, float]:
    """``{iteration: value}`` of ``key`` from every scalars.json under
    ``work_dir`` (later runs overwrite earlier ones for the same step)."""
    out: Dict[int, float] = {}
    runs = sorted(d for d in os.listdir(work_dir)
                  if osp.isdir(osp.join(work_dir, d)))
    for run in runs:
        f = osp.join(work_dir, run, 'vis_data', 'scalars.json')
        if not osp.isfile(f):
            continue
        with open(f) as fh:
            for line in fh:
                rec = json.loads(line)
                if key in rec and 'step' in rec:
                    out[int(rec['step'])] = rec[key]
    return out


def losses_per_run(work_dir: str, key: str = 'loss') -> List[Dict[int, float]]:
    """Like :func:`losses` but one dict per run (timestamped folder)."""
    res = []
    for run in sorted(d for d in os.listdir(work_dir)
                      if osp.isdir(osp.join(work_dir, d))):
        f = osp.join(work_dir, run, 'vis_data', 'scalars.json')
        cur: Dict[int, float] = {}
        if osp.isfile(f):
            with open(f) as fh:
                for line in fh:
                    rec = json.loads(line)
                    if key in rec and 'step' in rec:
                        cur[int(rec['step'])] = rec[key]
        res.append(cur)
    return res


def prewarm() -> None:
    """Import the whole stack once in this process, so that the forked runs
    of :func:`train_forked` start in a second instead of 10-30 s."""
    import cv2
    import torch
    torch.set_num_threads(1)
    # OpenCV's worker pool is not fork-safe: once an earlier test of this
    # process ran a parallel cv2 op (e.g. mmseg's inference_model), a forked
    # child hangs in the Runner's cv2.setNumThreads(0) on the pool's lock.
    # Shut the pool down here, in the parent, before any fork.
    cv2.setNumThreads(0)
    if osp.join(REPO, 'tools') not in sys.path:
        sys.path.insert(0, osp.join(REPO, 'tools'))
    import train  # noqa: F401  tools/train.py
    import mmplugins  # noqa: F401
    import mmdet.models  # noqa: F401
    import mmpretrain.models  # noqa: F401
    import mmseg.models  # noqa: F401


def _wait_for_a_new_second(work_dir: str) -> None:
    """mmengine names a run's folder after its start time, to the second. A
    forked run starts within a second, so one started right after another
    in the same ``work_dir`` would log into the previous run's folder: wait
    until the current second has no folder there."""
    while osp.isdir(osp.join(work_dir, time.strftime('%Y%m%d_%H%M%S'))):
        time.sleep(0.05)


def train_forked(config: str, work_dir: str, resume: bool = False,
                 log: Optional[str] = None) -> int:
    """Run ``tools/train.py``'s ``main`` in a forked child of this process
    (call :func:`prewarm` first). Returns the exit code: 0, 1 on an
    exception, ``-9`` when the child was SIGKILLed."""
    prewarm()
    import train
    os.makedirs(work_dir, exist_ok=True)
    _wait_for_a_new_second(work_dir)
    log = log or osp.join(work_dir, 'stdout.log')
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 1
        try:
            # the Runner calls cv2.setNumThreads(0) (mmengine's mp_cfg): on
            # the pool state inherited from the parent (stopped in prewarm)
            # that hangs in pthread_cond_destroy; the count is 0 already
            import cv2
            cv2.setNumThreads = lambda n: None
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            # pytest swaps sys.stdout for its capture: write to the file
            sys.stdout = os.fdopen(1, 'w', buffering=1, closefd=False)
            sys.stderr = os.fdopen(2, 'w', buffering=1, closefd=False)
            argv = [config, '--work-dir', work_dir]
            if resume:
                argv.append('--resume')
            train.main(argv)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:  # noqa: BLE001 - reported via the log
            import traceback
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def read_log(work_dir: str) -> str:
    path = osp.join(work_dir, 'stdout.log')
    return open(path).read() if osp.isfile(path) else ''
