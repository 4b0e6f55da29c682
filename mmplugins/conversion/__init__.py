"""Conversion of the papers' own files (lhoyer/DAFormer, HRDA, MIC) to
mmplugins: reference configs (:mod:`.reference_config`, one module per
config section, key tables in :mod:`.tables`), released checkpoints
(:mod:`.checkpoints`) and SegFormer's original MiT weights
(:mod:`.mit_weights`). The command-line tools in ``tools/misc/`` are thin
wrappers over these."""
from .base import ConversionError
from .reference_config import Converter, convert_file, load_reference
from .render import render
from .schedule_section import poly_warmup_schedulers

__all__ = ['ConversionError', 'Converter', 'convert_file', 'load_reference',
           'poly_warmup_schedulers', 'render']
