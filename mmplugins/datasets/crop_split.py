"""A dataset's pipeline split at its random crop, for rare class sampling.

Rare class sampling (:mod:`mmplugins.datasets.rare_class_sampling`) re-crops
an image until the crop holds enough pixels of the drawn class. Re-running
the whole source pipeline for that decodes the image again and re-runs every
augmentation after the crop (flip, photometric distortion, ``DualBranchAug``
with its Affine + Elastic warps) for crops that are thrown away. With the
pipeline split at the crop,

    load = transforms before the crop   (decode, resize: run once)
    crop = the random crop              (retried)
    finish = transforms after the crop  (flip, photometric, DualBranchAug,
                                         pack: run once, on the kept crop)

only the crop is retried. Each retry crops a fresh copy of the same
pre-crop results, so with deterministic pre-crop transforms (``Resize`` to
a fixed scale, as in every shipped config) the accepted crop has the same
distribution as with whole-pipeline retries: the crops are drawn i.i.d.
from the same transform on the same resized image, and the transforms after
the crop (flips, colour) do not change how many pixels of a class it holds.
What differs is the order in which the global ``np.random`` is consumed, so
a seeded run gives other (equally distributed) samples than before.

A random transform before the crop (e.g. ``RandomResize``) would be drawn
once per item here, while whole-pipeline retries (the reference) re-draw it
each time, which changes which crops are accepted. So a pipeline with a
transform before the crop that is not known to be deterministic
(:data:`DETERMINISTIC_PRE_CROP`) is not split: its re-crops re-run the whole
pipeline, as the reference does.
"""
from typing import Any, Callable, Optional, Tuple

#: Transform classes recognised as "the random crop" (checked with
#: isinstance, so subclasses count). mmseg's ``RandomCrop`` is added lazily
#: by :func:`crop_types`; a project crop transform may be appended here.
EXTRA_CROP_TYPES: list = []

#: Transform type names that may run before the crop in a split pipeline:
#: the same output every time for the same item (no random draw). Anything
#: else before the crop keeps the whole-pipeline retries. A project's
#: deterministic transform may be added here.
DETERMINISTIC_PRE_CROP = {
    'LoadImageFromFile', 'LoadAnnotations', 'LoadImageFromNDArray',
    'LoadBiomedicalImageFromFile', 'LoadBiomedicalAnnotation', 'Resize',
    'CheckSegLabel', 'ValidPseudoMask', 'LoadDepthAnnotation'}


def crop_types() -> Tuple[type, ...]:
    """The transform classes treated as the random crop of a pipeline."""
    from mmseg.datasets.transforms import RandomCrop
    return (RandomCrop, *EXTRA_CROP_TYPES)


def _copy_results(results: dict) -> dict:
    """A copy a crop may modify without touching ``results``.

    Keys and containers (``seg_fields`` lists, meta dicts) are copied; the
    arrays are not: a crop slices them (views) and never writes into them,
    which is what mmseg's ``RandomCrop`` does.
    """
    return {
        key: value.copy() if isinstance(value, (list, dict, set)) else value
        for key, value in results.items()
    }


class CropSplitPipeline:
    """Run a dataset's pipeline in three stages around its random crop.

    Build it with :meth:`from_dataset`, which returns None when the dataset
    does not qualify (see there); the caller then re-runs the whole
    pipeline, as before.

    Args:
        dataset: An mmengine ``BaseDataset`` (``get_data_info`` +
            ``pipeline.transforms``).
        crop_index (int): Position of the crop in ``pipeline.transforms``.
    """

    def __init__(self, dataset, crop_index: int):
        transforms = list(dataset.pipeline.transforms)
        if not 0 <= crop_index < len(transforms):
            raise ValueError(f'crop_index must index the {len(transforms)} '
                             f'transforms, but got crop_index={crop_index}')
        self.dataset = dataset
        self.crop_index = crop_index
        self.pre = transforms[:crop_index]
        self.crop_transform = transforms[crop_index]
        self.post = transforms[crop_index + 1:]

    @classmethod
    def from_dataset(cls, dataset) -> Optional['CropSplitPipeline']:
        """The split of ``dataset``'s pipeline, or None when there is none.

        None (= fall back to whole-pipeline retries) when the dataset has no
        ``pipeline.transforms`` list, overrides mmengine's ``prepare_data``
        (then its items are not just ``pipeline(get_data_info(i))``), or
        its pipeline holds no crop or more than one (which one to retry
        would be ambiguous), or a transform before the crop is not in
        :data:`DETERMINISTIC_PRE_CROP` (a random one would be drawn once
        instead of once per retry).
        """
        pipeline = getattr(dataset, 'pipeline', None)
        transforms = getattr(pipeline, 'transforms', None)
        if not isinstance(transforms, list) or \
                not hasattr(dataset, 'get_data_info'):
            return None
        from mmengine.dataset import BaseDataset
        prepare = getattr(type(dataset), 'prepare_data', None)
        if prepare is not BaseDataset.prepare_data:
            return None
        types = crop_types()
        found = [i for i, t in enumerate(transforms) if isinstance(t, types)]
        if len(found) != 1:
            return None
        if any(type(t).__name__ not in DETERMINISTIC_PRE_CROP
               for t in transforms[:found[0]]):
            return None
        return cls(dataset, found[0])

    @staticmethod
    def _run(transforms, results):
        for t in transforms:
            results = t(results)
            if results is None:  # a transform rejected the sample
                return None
        return results

    def load(self, index: int) -> Optional[dict]:
        """Results of the transforms before the crop (None: rejected)."""
        if hasattr(self.dataset, '_fully_initialized') and \
                not self.dataset._fully_initialized:
            self.dataset.full_init()
        return self._run(self.pre, self.dataset.get_data_info(index))

    def crop(self, loaded: dict) -> Optional[dict]:
        """One random crop of ``loaded`` (which stays untouched)."""
        return self.crop_transform(_copy_results(loaded))

    def finish(self, cropped: dict) -> Optional[dict]:
        """Results of the transforms after the crop (the packed sample)."""
        return self._run(self.post, cropped)

    def stages(self) -> Tuple[Callable[[int], Any], Callable[[dict], Any],
                              Callable[[dict], Any]]:
        """``(load, crop, finish)`` as callables."""
        return self.load, self.crop, self.finish

    def __repr__(self) -> str:
        name = lambda t: type(t).__name__  # noqa: E731
        return (f'{type(self).__name__}(load={[name(t) for t in self.pre]}, '
                f'crop={name(self.crop_transform)}, '
                f'finish={[name(t) for t in self.post]})')


__all__ = ['CropSplitPipeline', 'crop_types', 'EXTRA_CROP_TYPES',
           'DETERMINISTIC_PRE_CROP']
