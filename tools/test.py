"""Test (evaluate) a checkpoint with the stock mmengine Runner.

Same flags as mmseg's/mmdet's ``tools/test.py``; the toolbox is chosen from the
config's ``default_scope``.
"""
import argparse
import os
import os.path as osp

from _toolbox import (default_work_dir, ensure_local_rank, load_config,
                      setup_toolbox)


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='dir for the evaluation logs')
    parser.add_argument('--out', help='dump predictions to this pickle file '
                        '(mmdet/mmpretrain) or directory (mmseg)')
    parser.add_argument('--show', action='store_true',
                        help='show prediction results')
    parser.add_argument('--show-dir',
                        help='directory (inside the work dir) where painted '
                        'predictions are saved')
    parser.add_argument('--wait-time', type=float, default=2)
    parser.add_argument('--show-interval', type=int, default=1,
                        help='paint every N-th test image (mmseg/mmdet '
                        'default to 50; here every image unless set)')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation (cfg.tta_model and '
                        'cfg.tta_pipeline)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args, scope):
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks; refer to '
            'the mmseg/mmdet configs, e.g. visualization=dict('
            "type='SegVisualizationHook')")
    hook = default_hooks['visualization']
    hook['draw'] = True
    hook['interval'] = args.show_interval
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        if scope == 'mmpretrain':
            hook['enable'] = True
            hook['out_dir'] = args.show_dir
        elif scope in ('mmdet', 'mmyolo'):
            hook['test_out_dir'] = args.show_dir
        else:  # mmseg: relative to the work dir, like mmdet's test_out_dir
            visualizer = cfg.visualizer
            visualizer['save_dir'] = osp.join(cfg.work_dir, args.show_dir)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    ensure_local_rank()
    cfg = load_config(args.config, args.cfg_options)
    scope = setup_toolbox(cfg)
    cfg.launcher = args.launcher
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = default_work_dir(args.config)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args, scope)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise KeyError(f'{args.config}: --tta needs `tta_model` and '
                           '`tta_pipeline` in the config')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        if scope == 'mmseg':
            cfg.test_evaluator['output_dir'] = args.out
            cfg.test_evaluator['keep_results'] = True
        else:
            cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
                cfg.test_evaluator, dict) else list(cfg.test_evaluator)
            cfg.test_evaluator.append(
                dict(type='DumpResults', out_file_path=args.out))
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = (Runner.from_cfg(cfg) if 'runner_type' not in cfg else
              RUNNERS.build(cfg))
    runner.test()


if __name__ == '__main__':
    main()
