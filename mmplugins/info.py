"""``python -m mmplugins.info``: the environment, for bug reports."""
import importlib
import importlib.metadata
import platform
import sys
from collections import OrderedDict

PACKAGES = ('mmplugins', 'torch', 'torchvision', 'mmengine', 'mmcv', 'mmseg',
            'mmdet', 'mmpretrain', 'timm', 'albumentations', 'tensorboard',
            'numpy', 'cv2', 'setuptools')


def _version(name):
    try:
        mod = importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - report, never crash
        return f'not available ({type(e).__name__})'
    return getattr(mod, '__version__', 'unknown')


def mmcv_ops_status() -> str:
    """'compiled (...)' or why not."""
    try:
        from mmcv.utils import ext_loader
        ext_loader.load_ext('_ext', ['nms'])
    except Exception as e:  # noqa: BLE001
        return f'NOT compiled ({type(e).__name__}: {e})'
    try:
        from mmcv.ops import get_compiler_version, get_compiling_cuda_version
        return (f'compiled (compiler {get_compiler_version()}, '
                f'CUDA {get_compiling_cuda_version()})')
    except Exception:  # noqa: BLE001
        return 'compiled'


def collect_info() -> 'OrderedDict[str, str]':
    info = OrderedDict()
    info['python'] = sys.version.replace('\n', ' ')
    info['platform'] = platform.platform()
    for name in PACKAGES:
        info[name] = _version(name)
    # the distribution version: make install's build is 0.6.0+mmcv21
    # (mmyolo.__version__ says 0.6.0 for PyPI's unpatched build too)
    try:
        info['mmyolo'] = importlib.metadata.version('mmyolo')
    except importlib.metadata.PackageNotFoundError:
        info['mmyolo'] = 'not installed (make install installs 0.6.0+mmcv21)'
    info['mmcv ops'] = mmcv_ops_status()
    import torch
    info['CUDA available'] = str(torch.cuda.is_available())
    if torch.cuda.is_available():
        info['GPU'] = ', '.join(
            torch.cuda.get_device_name(i)
            for i in range(torch.cuda.device_count()))
    info['torch threads'] = str(torch.get_num_threads())
    try:
        from mmplugins.plugins import LOADED
        info['third-party plugins'] = ', '.join(LOADED) or 'none'
    except Exception as e:  # noqa: BLE001
        info['third-party plugins'] = f'failed: {e}'
    return info


def main():
    for k, v in collect_info().items():
        print(f'{k:>20}: {v}')


if __name__ == '__main__':
    main()
