"""Predict unlabelled images with one model or an ensemble; write a submission.

::

    python tools/predict.py CONFIG CKPT [CONFIG2 CKPT2 ...] --img-dir DIR \\
        --out OUT [--format samsung|cityscapes|trainids|png] [--tta] \\
        [--weights W1 W2 ...] [--mode soft|hard] [--batch-size N]

Every image of ``--img-dir`` (any size, no annotation file) goes through
each model's own test pipeline (``--tta``: its ``tta_pipeline``, flips x
scales) and ``test_cfg`` (whole, batched slide, HRDA); the softmax of every
view and model is averaged (weighted by ``--weights``) at the output size
and the argmax written by the ``--format`` writer (``--mode hard``: a
weighted vote of the models' argmaxes instead). Images stream in batches of
``--batch-size``; the models run one after another on each batch. ``OUT``
appears only once every image is written (a temporary is moved into place).

Formats (``mmplugins/submission``; add one with one registered class):

* ``samsung``: the 2023 Samsung camera-invariant challenge CSV
  (``id,mask_rle``; one row per image and class, RLE at 960x540);
* ``cityscapes``: labelIds PNGs for the Cityscapes test server (mmseg's
  ``CityscapesMetric(format_only=True)``);
* ``trainids``: class-id PNGs (ACDC / Dark Zurich test servers);
* ``png``: palette PNGs to look at.

Example (the demo, docs/submission.md)::

    python tools/predict.py work_dirs/demo/mic_dual_aug/mic_dual_aug.py \\
        work_dirs/demo/mic_dual_aug/iter_150.pth \\
        --img-dir data/samsung_demo/test_image --out submission.csv
"""
import argparse
import os.path as osp
import sys
import time

_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(
        description='Predict unlabelled images (ensemble, TTA) into a '
        'submission file')
    p.add_argument('models', nargs='+', metavar='CONFIG CKPT',
                   help='config and checkpoint, one pair per model')
    p.add_argument('--img-dir', required=True,
                   help='folder of the images to predict')
    p.add_argument('--out', required=True,
                   help='submission file (samsung) or folder (PNG formats)')
    p.add_argument('--format', default='samsung',
                   help='writer: samsung (default), cityscapes, trainids, '
                   'png, or any registered in SUBMISSION_WRITERS')
    p.add_argument('--tta', action='store_true',
                   help="each config's tta_pipeline (flips x scales)")
    p.add_argument('--weights', type=float, nargs='+',
                   help='one weight per model (default: equal)')
    p.add_argument('--mode', choices=('soft', 'hard'), default='soft',
                   help='soft: mean probability (default); hard: vote')
    p.add_argument('--batch-size', type=int, default=1,
                   help='images per forward (default 1)')
    p.add_argument('--device', default=None,
                   help='default: cuda if available, else cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='overrides merged into every config')
    p.add_argument('--no-progress', action='store_true')
    args = p.parse_args(argv)
    if len(args.models) % 2:
        p.error(f'models must be CONFIG CHECKPOINT pairs, but got '
                f'{len(args.models)} paths: {args.models}')
    if args.batch_size < 1:
        p.error(f'--batch-size must be >= 1, got {args.batch_size}')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    from mmplugins.submission.seg_predictor import (SegEnsemblePredictor,
                                                    check_weights,
                                                    list_images)
    from mmplugins.submission.writer import SUBMISSION_WRITERS
    pairs = list(zip(args.models[0::2], args.models[1::2]))
    # cheap checks first: nothing is loaded for a bad command line
    check_weights(args.weights, len(pairs))
    writer_cls = SUBMISSION_WRITERS.get(args.format)
    if writer_cls is None:
        raise KeyError(f'--format {args.format!r} is not a registered '
                       'writer; registered: '
                       f'{sorted(SUBMISSION_WRITERS.module_dict)}')
    paths = list_images(args.img_dir)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    predictor = SegEnsemblePredictor(pairs, args.weights, tta=args.tta,
                                     mode=args.mode, device=device,
                                     cfg_options=args.cfg_options)
    writer = writer_cls(args.out, predictor.classes, predictor.palette)
    t0 = time.perf_counter()
    n = predictor.run(paths, writer, batch_size=args.batch_size,
                      progress=not args.no_progress)
    sec = time.perf_counter() - t0
    print(f'wrote {args.out} ({args.format}): {n} images, '
          f'{len(pairs)} model(s){" x TTA" if args.tta else ""}, '
          f'{n / sec:.2f} images/s')
    return dict(out=args.out, images=n, seconds=sec)


if __name__ == '__main__':
    main()
