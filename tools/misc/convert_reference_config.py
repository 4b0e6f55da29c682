"""Convert a DAFormer / HRDA / MIC reference config (mmseg 0.x) to mmplugins.

    python tools/misc/convert_reference_config.py REF_CONFIG OUT_CONFIG \
        [--allow-unsupported]

Prints every key of the reference config as mapped, ignored (with why) or
unsupported, and writes OUT_CONFIG, which ``tools/train.py`` and
``tools/test.py`` take. With unsupported keys it writes nothing and exits 1
(``--allow-unsupported`` writes them listed in a comment block). The logic
and its mapping table live in :mod:`mmplugins.conversion.reference_config`;
see docs/uda.md ("Reference configs").
"""
import argparse
import os.path as osp
import sys

_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mmplugins.conversion import (ConversionError, Converter,  # noqa: E402
                                  convert_file, poly_warmup_schedulers)

__all__ = ['ConversionError', 'Converter', 'convert_file',
           'poly_warmup_schedulers', 'main']


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('ref_config', help='reference (mmseg 0.x) config')
    parser.add_argument('out_config', help='mmplugins config to write')
    parser.add_argument('--allow-unsupported', action='store_true',
                        help='write the config even with unsupported keys '
                        '(listed in a comment block at its top)')
    args = parser.parse_args(argv)
    try:
        conv = convert_file(args.ref_config, args.out_config,
                            args.allow_unsupported)
    except (FileNotFoundError, ConversionError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    for line in conv.mapped:
        print(f'mapped:      {line}')
    for line in conv.ignored:
        print(f'ignored:     {line}')
    for line in conv.unsupported:
        print(f'UNSUPPORTED: {line}')
    print(f'wrote {args.out_config}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
