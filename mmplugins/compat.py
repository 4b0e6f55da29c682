"""Targeted fixes for the pinned stack, applied once on ``import mmplugins``.

Each patch is idempotent, version-agnostic in effect (it only changes what is
broken on this stack) and documented in ``docs/installation.md``:

1. **Resume on torch >= 2.6.** ``torch.load`` defaults to
   ``weights_only=True`` there, and mmengine 0.10.7 loads its own checkpoints
   without saying otherwise, so ``--resume`` dies with ``Unsupported global:
   mmengine.logging.history_buffer.HistoryBuffer``. We keep the safe loader
   and allow-list exactly the data types an mmengine checkpoint is made of
   (``HistoryBuffer`` and the numpy array/scalar reconstruction), instead of
   turning the unsafe pickle loader back on. ``HistoryBuffer`` also pickled
   its class-level table of statistics *functions* (``getattr(HistoryBuffer,
   'min')``), which no safe loader may accept; we stop writing the built-in
   entries (they are re-created on load). A checkpoint written by stock
   mmengine still holds them: loading it names the file and the one-off
   conversion ``tools/misc/upgrade_checkpoint.py``.
2. **CPU distributed training.** mmengine's ``init_dist`` calls
   ``torch.cuda.set_device`` unconditionally and configs ask for ``nccl``;
   the Runner passes ``device_ids=[LOCAL_RANK]`` to DDP, which DDP rejects for
   a CPU module. Without CUDA we use ``gloo``, skip ``set_device`` and give
   DDP ``device_ids=None``. With CUDA nothing changes.
3. **Config formatting cost.** ``Config.pretty_text`` runs yapf over the whole
   config every time it is used -- the Runner does so for the log, the dumped
   config, the visualizer and *every checkpoint* (~4 s each for an mmdet
   config on 2 cores). yapf is deterministic, so its result is memoised per
   input text: the output is byte-identical, just computed once.
"""
import os

import torch

_APPLIED = False


def _numpy_safe_globals():
    import numpy as np
    allowed = [np.ndarray, np.dtype]
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    allowed += [_reconstruct, scalar]
    # dtype instances pickle as their class (numpy.dtypes.Float64DType, ...)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [
            getattr(dtypes, n) for n in dir(dtypes)
            if n.endswith('DType') and isinstance(getattr(dtypes, n), type)
        ]
    return allowed


def checkpoint_safe_globals():
    """Types an mmengine/mmplugins checkpoint may contain."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return [HistoryBuffer] + _numpy_safe_globals()


_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getstate(self) -> dict:
    state = dict(self.__dict__)
    # only user-registered statistics travel; the built-ins are re-created
    # by __setstate__ -> _set_default_statistics()
    state['statistics_methods'] = {
        k: v
        for k, v in self._statistics_methods.items()
        if k not in _DEFAULT_STATISTICS
    }
    return state


def _patch_torch_load():
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.runner import checkpoint as mm_ckpt
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4 loads everything anyway
        return
    add(checkpoint_safe_globals())

    loader = mm_ckpt.CheckpointLoader._schemes.get('')
    if loader is None or getattr(loader, '_mmplugins', False):
        return

    def load_from_local(filename, map_location):
        try:
            return loader(filename, map_location)
        except Exception as e:  # noqa: BLE001 - re-raised with advice
            if 'weights_only' not in str(e) and 'Unsupported global' not in \
                    str(e):
                raise
            raise RuntimeError(
                f'Checkpoint {filename} holds Python objects that the safe '
                'loader (torch.load(weights_only=True), the default since '
                'torch 2.6) refuses -- usually a checkpoint written by mmengine '
                'without mmplugins. If you trust the file, convert it once: '
                f'`python tools/misc/upgrade_checkpoint.py {filename}`. '
                f'Original error: {str(e).splitlines()[-1][:300]}') from e

    load_from_local._mmplugins = True
    mm_ckpt.CheckpointLoader._schemes[''] = load_from_local


def _cuda_usable() -> bool:
    return torch.cuda.is_available() and torch.cuda.device_count() > 0


def _patch_cpu_distributed():
    from mmengine.dist import utils as dist_utils
    from mmengine.model.wrappers import distributed as mm_ddp

    if getattr(dist_utils._init_dist_pytorch, '_mmplugins', False):
        return
    orig_init = dist_utils._init_dist_pytorch

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if _cuda_usable() or init_backend != 'torch':
            return orig_init(backend, init_backend=init_backend, **kwargs)
        import torch.distributed as torch_dist
        if backend == 'nccl':  # nccl needs CUDA; gloo is the CPU backend
            backend = 'gloo'
        torch_dist.init_process_group(backend=backend, **kwargs)

    _init_dist_pytorch._mmplugins = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch

    orig_slurm = dist_utils._init_dist_slurm

    def _init_dist_slurm(backend, port=None, init_backend='torch', **kw):
        if _cuda_usable():
            return orig_slurm(backend, port=port, init_backend=init_backend,
                              **kw)
        # mirror mmengine's env setup without torch.cuda.set_device
        import subprocess
        proc_id = int(os.environ['SLURM_PROCID'])
        ntasks = int(os.environ['SLURM_NTASKS'])
        node_list = os.environ['SLURM_NODELIST']
        addr = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1')
        if port is not None:
            os.environ['MASTER_PORT'] = str(port)
        os.environ.setdefault('MASTER_PORT', '29500')
        os.environ.setdefault('MASTER_ADDR', addr)
        os.environ['WORLD_SIZE'] = str(ntasks)
        os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
        os.environ['RANK'] = str(proc_id)
        _init_dist_pytorch('gloo' if backend == 'nccl' else backend,
                           init_backend=init_backend, **kw)

    dist_utils._init_dist_slurm = _init_dist_slurm

    orig_ddp_init = mm_ddp.MMDistributedDataParallel.__init__

    def __init__(self, module, detect_anomalous_params=False, **kwargs):
        params = list(module.parameters())
        on_cpu = bool(params) and all(p.device.type == 'cpu' for p in params)
        if on_cpu and kwargs.get('device_ids') is not None:
            # DDP accepts device_ids only for single-device CUDA modules
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        orig_ddp_init(self, module=module,
                      detect_anomalous_params=detect_anomalous_params,
                      **kwargs)

    mm_ddp.MMDistributedDataParallel.__init__ = __init__


def _patch_config_formatting():
    import functools

    from mmengine.config import config as mm_config
    fmt = mm_config.FormatCode
    if getattr(fmt, '_mmplugins', False):
        return

    @functools.lru_cache(maxsize=32)
    def _cached(text, style_items, verify):
        kwargs = dict(style_config=dict(style_items))
        if verify is not None:
            kwargs['verify'] = verify
        return fmt(text, **kwargs)

    def FormatCode(text, style_config=None, verify=None, **kwargs):
        if kwargs or not isinstance(style_config, dict):
            return fmt(text, style_config=style_config, **kwargs) if \
                verify is None else fmt(text, style_config=style_config,
                                        verify=verify, **kwargs)
        return _cached(text, tuple(sorted(style_config.items())), verify)

    FormatCode._mmplugins = True
    mm_config.FormatCode = FormatCode


def apply_patches():
    """Apply all fixes (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _patch_torch_load()
    _patch_cpu_distributed()
    _patch_config_formatting()
    _APPLIED = True
