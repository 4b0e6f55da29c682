"""``UDADataPreProcessor(device_aug=[...])``: which CPU transforms can move
to the training device, and the error for those that cannot.

A config moves a transform from the source pipeline to the data
preprocessor **unchanged** (same ``type`` and arguments); this module maps
the type to its batched device implementation:

=====================  ==============================================
``type`` in the list   device implementation
=====================  ==============================================
``DualBranchAug``      :class:`~.batch_dual_branch_aug.BatchDualBranchAug`
                       (adds ``dist_inputs`` / ``dist_data_samples``)
``FisheyeDistortion``  :class:`~.batch_fisheye.BatchFisheyeDistortion`
                       (warps the source ``inputs`` and labels)
=====================  ==============================================

Any other type raises one ``ValueError`` naming it and the CPU
alternative (keep it in the dataset pipeline).
"""
from typing import Dict, List, Sequence

from .batch_dual_branch_aug import BatchDualBranchAug
from .batch_fisheye import BatchFisheyeDistortion

#: CPU transform type -> device implementation
DEVICE_AUGS: Dict[str, type] = {
    'DualBranchAug': BatchDualBranchAug,
    'FisheyeDistortion': BatchFisheyeDistortion,
}


def build_device_aug(cfgs: Sequence[dict]) -> List[object]:
    """Build the device twins of the transform configs ``cfgs``.

    Args:
        cfgs (Sequence[dict]): Transform configs as written in a dataset
            pipeline (``dict(type='DualBranchAug', ...)``), in the order
            they run.

    Returns:
        list: The device transforms, same order.

    Raises:
        ValueError: a config without ``type``, or a type with no device
            implementation (the message names it and the CPU alternative);
            unsupported options of a supported type are reported by the
            device class.
    """
    if isinstance(cfgs, dict) or not isinstance(cfgs, (list, tuple)):
        raise ValueError('device_aug must be a list of transform configs, '
                         f'but got device_aug={cfgs!r}')
    out = []
    for cfg in cfgs:
        if not isinstance(cfg, dict) or 'type' not in cfg:
            raise ValueError('device_aug entries must be dicts with a '
                             f"'type', but got {cfg!r}")
        cfg = dict(cfg)
        name = cfg.pop('type')
        cls = DEVICE_AUGS.get(name if isinstance(name, str) else
                              getattr(name, '__name__', name))
        if cls is None:
            raise ValueError(
                f'device_aug: transform {name!r} has no device '
                f'implementation (device: {sorted(DEVICE_AUGS)}); keep '
                f"dict(type={name!r}, ...) in the dataset's CPU pipeline "
                'instead')
        out.append(cls(**cfg))
    return out


__all__ = ['DEVICE_AUGS', 'build_device_aug']
