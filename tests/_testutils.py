"""Helpers shared by tests (import as ``_testutils``; tests/ is on sys.path)."""
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def seg_cfg_options(data_root, max_iters=2, **extra):
    """--cfg-options for a short run of a seg config on ``data_root``."""
    opts = {
        'train_cfg.max_iters': max_iters,
        'train_cfg.val_interval': max_iters,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': max_iters,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
    }
    opts.update(extra)
    return opts


def set_data_root(cfg, root):
    """Point every dataset (and DualBranchAug) of a seg config at ``root``."""
    def visit(node):
        if isinstance(node, dict):
            if 'data_root' in node:
                node['data_root'] = root
            for v in node.values():
                visit(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                visit(v)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if key in cfg:
            visit(cfg[key])
    cfg.data_root = root
    return cfg
