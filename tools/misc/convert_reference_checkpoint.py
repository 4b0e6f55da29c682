"""Convert a released DAFormer / HRDA / MIC checkpoint (mmseg 0.x) to ours.

    python tools/misc/convert_reference_checkpoint.py REF_CKPT OUT_CKPT \
        [--config CONVERTED_CONFIG] [--unsafe-load]
    python tools/test.py CONVERTED_CONFIG OUT_CKPT

``CONVERTED_CONFIG`` is the reference's config converted by
``tools/misc/convert_reference_config.py``. The reference's ``model.`` /
``ema_model.`` / ``imnet_model.`` (/ ``mic.teacher.ema_model.``) become
``student.`` / ``teacher.`` / ``imnet_model.`` (/ ``mic.teacher.``); the MiT
backbones are renamed by mmseg's own ``mit2mmseg.py``, the DAFormer / HRDA
heads by the tables of ``mmplugins/conversion/checkpoints.py`` (read them
there). With ``--config`` the model of that config is built and must be
filled exactly; without it only the reference side is checked (every key
converted). A key that does not convert, or a model key left unfilled, is
one error listing the keys (exit status 1); nothing is written then.
``--unsafe-load``: read REF_CKPT with the full pickle loader (only for a
file you trust) when the safe loader refuses it.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))


def build_model(config_path):
    """The model of ``config_path``, built as tools/train.py builds it."""
    from _toolbox import load_config, setup_toolbox
    from mmengine.registry import MODELS, DefaultScope
    cfg = load_config(config_path)
    scope = setup_toolbox(cfg)
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg.model)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('ref_checkpoint', help='reference (mmseg 0.x) '
                        'DAFormer / HRDA / MIC checkpoint')
    parser.add_argument('out_checkpoint', help='mmplugins checkpoint to write')
    parser.add_argument('--config', help='the converted config: the result '
                        'must fill its model exactly')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='load REF_CHECKPOINT with the full pickle '
                        'loader (trusted files only)')
    args = parser.parse_args(argv)
    import mmplugins  # noqa: F401
    from mmplugins.conversion.checkpoints import convert_checkpoint
    try:
        model = None
        if args.config is not None:
            model = build_model(args.config)
        report = convert_checkpoint(
            args.ref_checkpoint, args.out_checkpoint, model=model,
            model_name=f'the model of {args.config}',
            unsafe=args.unsafe_load)
    except (FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f"models:  {', '.join(report['models']) or report['layout']}")
    if report['dropped']:
        print(f"dropped: {len(report['dropped'])} keys "
              f"({report['dropped'][0]} ...; see DROPPED in "
              'mmplugins/conversion/checkpoints.py)')
    for note in report['filled']:
        print(f'filled:  {note}')
    if model is None:
        print('checked: reference keys only (pass --config to check the '
              'result against the converted config\'s model)')
    else:
        print(f'checked: fills the model of {args.config} exactly')
    print(f"wrote {args.out_checkpoint} ({report['num_tensors']} tensors)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
