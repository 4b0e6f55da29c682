"""Targeted fixes for the pinned stack, applied once on ``import mmplugins``.

Each patch intervenes only where the stock stack fails, is idempotent and is
listed in ``docs/installation.md`` (what stock does, why it fails here, how
to undo it); :func:`remove_patches` undoes all of them. They are
process-wide (they replace functions of mmengine/torch, not per runner):

1. **Resume on torch >= 2.6.** ``torch.load`` defaults to
   ``weights_only=True`` there, and mmengine 0.10.7 loads its own checkpoints
   without saying otherwise, so ``--resume`` dies with ``Unsupported global:
   mmengine.logging.history_buffer.HistoryBuffer``. We keep the safe loader
   and add to torch's *process-wide* safe-globals list exactly the data
   types an mmengine checkpoint is made of (``HistoryBuffer``, numpy's array
   and scalar reconstruction and its numeric dtype classes) -- every
   ``torch.load(weights_only=True)`` in the process then accepts them,
   nothing else. ``HistoryBuffer`` also pickled its class-level table of
   statistics *functions* (``getattr(HistoryBuffer, 'min')``), which no safe
   loader may accept; we stop writing the built-in entries (they are
   re-created on load). A checkpoint written by stock mmengine still holds
   them: loading it names the file and the one-off conversion
   ``tools/misc/upgrade_checkpoint.py``.
2. **Distributed training without CUDA.** mmengine's ``_init_dist_pytorch``
   / ``_init_dist_slurm`` end (when no MLU/NPU/MUSA is present) with
   ``torch.cuda.set_device``, which fails without CUDA, and configs ask for
   ``nccl``, which needs CUDA. Only when no CUDA/MLU/NPU/MUSA device exists
   we call mmengine's own function with ``torch.cuda.set_device`` a no-op
   for the duration of the call and ``nccl`` replaced by ``gloo`` (a WARNING
   log line names both); ``launcher='slurm'`` without the SLURM variables
   gets one clear error instead of a ``KeyError``. The Runner passes
   ``device_ids=[LOCAL_RANK]`` to DDP, which torch rejects for a CPU module:
   for a module whose parameters are all on the CPU we pass ``None``. With
   CUDA (or MLU/NPU/MUSA) everything goes through mmengine unchanged.
3. **Config formatting cost.** ``Config.pretty_text`` runs yapf over the whole
   config every time it is used -- the Runner does so for the log, the dumped
   config, the visualizer and *every checkpoint* (~4 s each for an mmdet
   config on 2 cores). yapf is deterministic, so its result is memoised per
   input text (32 entries): the output is byte-identical, computed once.
4. **Pretrained MiT weights.** ``Pretrained`` init (``init_cfg=dict(type=
   'Pretrained', ...)`` or mmseg's ``pretrained=``) loads with
   ``strict=False``: SegFormer's original ``mit_bX.pth`` (what DAFormer /
   HRDA / MIC load) matches none of mmseg 1.x's MiT names, so the backbone
   stays randomly initialised behind one WARNING. For a
   ``MixVisionTransformer`` only, loading goes through
   :func:`mmplugins.conversion.mit_weights.load_mit_checkpoint`: SegFormer's
   naming is converted on the fly with mmseg's own ``mit2mmseg.py``, and
   weights that do not fill the backbone exactly are one error naming the
   file and the keys. Every other module loads as before.
"""
import contextlib
import logging
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
    # dtype instances pickle as their class (numpy.dtypes.Float64DType, ...):
    # only the numeric ones (message-hub histories, RNG states); no object,
    # string, void or datetime dtypes
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [
            getattr(dtypes, n) for n in _NUMERIC_DTYPES
            if isinstance(getattr(dtypes, n, None), type)
        ]
    return allowed


_NUMERIC_DTYPES = tuple(
    f'{kind}{bits}DType' for kind, sizes in (
        ('Int', (8, 16, 32, 64)), ('UInt', (8, 16, 32, 64)),
        ('Float', (16, 32, 64)), ('Complex', (64, 128))) for bits in sizes
) + ('BoolDType', 'LongDType', 'ULongDType', 'LongLongDType',
     'ULongLongDType', 'ByteDType', 'UByteDType', 'ShortDType',
     'UShortDType', 'IntDType', 'UIntDType', 'LongDoubleDType',
     'CLongDoubleDType')


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
    load_from_local._stock = loader
    mm_ckpt.CheckpointLoader._schemes[''] = load_from_local


def _cuda_usable() -> bool:
    return torch.cuda.is_available() and torch.cuda.device_count() > 0


def _other_accelerator() -> bool:
    """An accelerator whose branch mmengine's init code has (MLU/NPU/MUSA):
    those paths are left to mmengine untouched."""
    from mmengine.device import (is_mlu_available, is_musa_available,
                                 is_npu_available)
    return is_mlu_available() or is_npu_available() or is_musa_available()


_SLURM_VARS = ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST',
               'SLURM_LOCALID')


@contextlib.contextmanager
def _no_cuda_set_device():
    """Within the call only: ``torch.cuda.set_device`` is a no-op (the one
    line of mmengine's init that needs CUDA; gloo does not use it)."""
    orig = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = orig


def _cpu_backend(backend: str) -> str:
    if backend != 'nccl':
        return backend
    from mmengine.logging import print_log
    print_log(
        "mmplugins: dist backend 'nccl' was requested but CUDA is not "
        "available; using 'gloo' instead (nccl needs CUDA). Set "
        "env_cfg.dist_cfg.backend='gloo' to silence this.",
        logger='current', level=logging.WARNING)
    return 'gloo'


def _patch_cpu_distributed():
    """Stock mmengine fails without CUDA only in the last branch of its init
    functions (``torch.cuda.set_device``, and ``nccl``), and in DDP's
    ``device_ids`` for a CPU module. We call mmengine's own functions and
    change only that, only when no CUDA/MLU/NPU/MUSA device exists."""
    from mmengine.dist import utils as dist_utils
    from mmengine.model.wrappers import distributed as mm_ddp

    if getattr(dist_utils._init_dist_pytorch, '_mmplugins', False):
        return
    orig_pytorch = dist_utils._init_dist_pytorch
    orig_slurm = dist_utils._init_dist_slurm

    # the stock functions are looked up on the wrappers at call time (a
    # test can spy on them)
    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        stock = _init_dist_pytorch._stock
        if _cuda_usable() or _other_accelerator():
            return stock(backend, init_backend=init_backend, **kwargs)
        with _no_cuda_set_device():
            return stock(_cpu_backend(backend), init_backend=init_backend,
                         **kwargs)

    def _init_dist_slurm(backend, port=None, init_backend='torch', **kw):
        stock = _init_dist_slurm._stock
        if _cuda_usable() or _other_accelerator():
            return stock(backend, port=port, init_backend=init_backend, **kw)
        # stock: a bare KeyError of the first missing variable (or, without
        # SLURM_LOCALID, SLURM_PROCID % torch.cuda.device_count(): a
        # ZeroDivisionError when there is no CUDA)
        missing = [v for v in _SLURM_VARS if v not in os.environ]
        if missing:
            raise RuntimeError(
                f"launcher='slurm' needs the SLURM variables {missing}, "
                'which a job step started by srun has, and this machine has '
                'no CUDA device. Run under srun, or start the processes with '
                "torchrun and launcher='pytorch'.")
        with _no_cuda_set_device():
            return stock(_cpu_backend(backend), port=port,
                         init_backend=init_backend, **kw)

    _init_dist_pytorch._mmplugins = True
    _init_dist_slurm._mmplugins = True
    _init_dist_pytorch._stock = orig_pytorch
    _init_dist_slurm._stock = orig_slurm
    dist_utils._init_dist_pytorch = _init_dist_pytorch
    dist_utils._init_dist_slurm = _init_dist_slurm

    orig_ddp_init = mm_ddp.MMDistributedDataParallel.__init__

    def __init__(self, module, detect_anomalous_params=False, **kwargs):
        params = list(module.parameters())
        on_cpu = bool(params) and all(p.device.type == 'cpu' for p in params)
        if on_cpu and kwargs.get('device_ids') is not None:
            # the Runner passes device_ids=[LOCAL_RANK]; torch's DDP accepts
            # device_ids only for single-device accelerator modules
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        orig_ddp_init(self, module=module,
                      detect_anomalous_params=detect_anomalous_params,
                      **kwargs)

    __init__._stock = orig_ddp_init
    mm_ddp.MMDistributedDataParallel.__init__ = __init__


def _patch_config_formatting():
    import functools

    from mmengine.config import config as mm_config
    if getattr(mm_config.FormatCode, '_mmplugins', False):
        return

    # the formatter is looked up at call time (FormatCode._stock), so a test
    # can count how often yapf really runs
    @functools.lru_cache(maxsize=32)
    def _cached(text, style_items, verify):
        kwargs = dict(style_config=dict(style_items))
        if verify is not None:
            kwargs['verify'] = verify
        return FormatCode._stock(text, **kwargs)

    def FormatCode(text, style_config=None, verify=None, **kwargs):
        if kwargs or not isinstance(style_config, dict):
            if verify is not None:
                kwargs['verify'] = verify
            return FormatCode._stock(text, style_config=style_config,
                                     **kwargs)
        return _cached(text, tuple(sorted(style_config.items())), verify)

    FormatCode._mmplugins = True
    FormatCode._stock = mm_config.FormatCode
    FormatCode.cache = _cached
    mm_config.FormatCode = FormatCode


def _patch_mit_pretrained():
    import sys

    from mmengine.model import weight_init
    cls = weight_init.PretrainedInit
    if getattr(cls.__call__, '_mmplugins', False):
        return

    def __call__(self, module):
        # mmseg's MiT module is imported by whoever built `module`
        mit = sys.modules.get('mmseg.models.backbones.mit')
        if mit is None or not isinstance(module, mit.MixVisionTransformer):
            return __call__._stock(self, module)
        from mmengine.logging import print_log

        from mmplugins.conversion.mit_weights import load_mit_checkpoint
        where = f'{self.prefix} in model' if self.prefix else 'model'
        print_log(f'load {where} from: {self.checkpoint}', logger='current')
        load_mit_checkpoint(module, self.checkpoint, prefix=self.prefix,
                            map_location=self.map_location)
        if hasattr(module, '_params_init_info'):
            weight_init.update_init_info(module,
                                         init_info=self._get_init_info())

    __call__._mmplugins = True
    __call__._stock = cls.__call__
    cls.__call__ = __call__


def remove_patches():
    """Undo :func:`apply_patches`: put back mmengine's own functions (dist
    init, DDP ``__init__``, the local checkpoint loader, ``FormatCode``,
    ``PretrainedInit.__call__``),
    ``HistoryBuffer``'s default pickling and torch's safe-globals list
    without our entries. For comparing with the stock stack; idempotent."""
    global _APPLIED
    from mmengine.config import config as mm_config
    from mmengine.dist import utils as dist_utils
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.model.wrappers import distributed as mm_ddp
    from mmengine.runner import checkpoint as mm_ckpt
    for name in ('_init_dist_pytorch', '_init_dist_slurm'):
        fn = getattr(dist_utils, name)
        if hasattr(fn, '_stock'):
            setattr(dist_utils, name, fn._stock)
    ddp_init = mm_ddp.MMDistributedDataParallel.__init__
    if hasattr(ddp_init, '_stock'):
        mm_ddp.MMDistributedDataParallel.__init__ = ddp_init._stock
    loader = mm_ckpt.CheckpointLoader._schemes.get('')
    if hasattr(loader, '_stock'):
        mm_ckpt.CheckpointLoader._schemes[''] = loader._stock
    if hasattr(mm_config.FormatCode, '_stock'):
        mm_config.FormatCode = mm_config.FormatCode._stock
    from mmengine.model import weight_init
    if hasattr(weight_init.PretrainedInit.__call__, '_stock'):
        weight_init.PretrainedInit.__call__ = \
            weight_init.PretrainedInit.__call__._stock
    if HistoryBuffer.__dict__.get('__getstate__') is \
            _history_buffer_getstate:
        del HistoryBuffer.__getstate__
    get = getattr(torch.serialization, 'get_safe_globals', None)
    if get is not None:
        ours = set(map(id, checkpoint_safe_globals()))
        keep = [g for g in get() if id(g) not in ours]
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(keep)
    _APPLIED = False


def apply_patches():
    """Apply all fixes (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _patch_torch_load()
    _patch_cpu_distributed()
    _patch_config_formatting()
    _patch_mit_pretrained()
    _APPLIED = True
