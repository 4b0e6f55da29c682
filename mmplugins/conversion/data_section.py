"""Reference ``data`` section -> dataloaders, datasets and pipelines
(mmseg 1.x transforms; Normalize / Pad move to the data preprocessor)."""
from .base import SectionBase
from .tables import DATASET_TYPES, SOURCE_EVALUATORS


class DataSection(SectionBase):
    """``_data`` and its helpers (mixed into the Converter)."""

    def _data(self, d):
        d = dict(d)
        self.norms = {}  # role -> (mean, std, to_rgb)
        self.pad = None
        self.crop_size = None
        self.sync_crop_size = None
        batch = d.pop('samples_per_gpu', 2)
        workers = d.pop('workers_per_gpu', 4)
        self._map('data.samples_per_gpu', 'train_dataloader.batch_size')
        self._map('data.workers_per_gpu',
                  '{train,val,test}_dataloader.num_workers')
        train = dict(d.pop('train', None) or {})
        if self.baseline:
            train_ds = self._baseline_train(train)
        else:
            train_ds = self._uda_train(train)
        persistent = workers > 0
        self.out['train_dataloader'] = dict(
            batch_size=batch, num_workers=workers,
            persistent_workers=persistent,
            sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=train_ds)
        for split in ('val', 'test'):
            ds = d.pop(split, None)
            if ds is None:
                continue
            self.out[f'{split}_dataloader'] = dict(
                batch_size=1, num_workers=workers,
                persistent_workers=persistent,
                sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=self._dataset(ds, f'data.{split}', 'test'))
            self._map(f'data.{split}', f'{split}_dataloader.dataset')
        self._leftover(d, 'data')

    def _baseline_train(self, train):
        """A source-only / target-only baseline's plain labelled dataset."""
        if train.get('type') == 'UDADataset':
            self._reject('data.train.type', train.pop('type'),
                         'a UDADataset needs the `uda` section')
            self._leftover(train, 'data.train')
            return None
        self._map('data.train (no uda: baseline)',
                  'train_dataloader.dataset (plain segmentor)')
        return self._dataset(train, 'data.train', 'source')

    def _uda_train(self, train):
        """``data.train=dict(type='UDADataset', source, target, ...)``."""
        ttype = train.pop('type', None)
        if ttype != 'UDADataset':
            self._reject('data.train.type', ttype,
                         "only 'UDADataset' (source + target) is converted")
        uda_ds = dict(type='UDADataset')
        uda_ds['source'] = self._dataset(train.pop('source', None),
                                         'data.train.source', 'source')
        uda_ds['target'] = self._dataset(train.pop('target', None),
                                         'data.train.target', 'target')
        if uda_ds['target'] and 'crop_pseudo_margins' in uda_ds['target']:
            for k in ('pseudo_weight_ignore_top',
                      'pseudo_weight_ignore_bottom'):
                if self.uda.get(k, 0) > 0:
                    if f'uda.{k} -> model.{k}' in self.mapped:
                        self.mapped.remove(f'uda.{k} -> model.{k}')
                    self._reject(f'uda.{k}', self.uda.pop(k),
                                 'together with data.train.target.'
                                 'crop_pseudo_margins: the reference asserts '
                                 'it is 0; give the rows in the margins')
        rcs = train.pop('rare_class_sampling', None)
        if rcs is not None:
            uda_ds['rare_class_sampling'] = dict(rcs)
            self._map('data.train.rare_class_sampling',
                      'train_dataloader.dataset.rare_class_sampling')
        if 'sync_crop_size' in train:
            sync = train.pop('sync_crop_size')
            if sync is None:
                self._ignore('data.train.sync_crop_size', sync,
                             'ignored (no effect)')
            else:
                # the reference crops source and target, after their
                # pipelines (padded to the crop size), at the SAME box
                uda_ds['sync_crop_size'] = tuple(sync)
                self.sync_crop_size = tuple(sync)
                self._map('data.train.sync_crop_size',
                          'train_dataloader.dataset.sync_crop_size (and '
                          'the data preprocessor pads to it)')
        self._leftover(train, 'data.train')
        return uda_ds

    def _dataset(self, ds, path, role):
        if ds is None:
            self._reject(path, None, 'required')
            return None
        ds = dict(ds)
        dtype = ds.pop('type', None)
        if dtype not in DATASET_TYPES:
            self._reject(f'{path}.type', dtype,
                         f'converted datasets: {sorted(DATASET_TYPES)}')
        out = dict(type=DATASET_TYPES.get(dtype, dtype))
        if role == 'source':
            self.source_type = dtype
        if 'data_root' in ds:
            out['data_root'] = ds.pop('data_root')
        prefix = {}
        if 'img_dir' in ds:
            prefix['img_path'] = ds.pop('img_dir')
        ann = ds.pop('ann_dir', None)
        if ann is not None:
            if role == 'target':
                self._ignore(f'{path}.ann_dir', ann,
                             'ignored (no effect: target labels are never '
                             'trained on)')
            else:
                prefix['seg_map_path'] = ann
        out['data_prefix'] = prefix
        self._map(f'{path}.img_dir/ann_dir', 'data_prefix=dict(img_path, '
                  'seg_map_path)')
        for k in ('img_suffix', 'seg_map_suffix', 'reduce_zero_label',
                  'ignore_index'):
            if k in ds:
                out[k] = ds.pop(k)
        if role == 'test':
            out['test_mode'] = True
        if 'crop_pseudo_margins' in ds:
            margins = ds.pop('crop_pseudo_margins')
            if role != 'target':
                self._reject(f'{path}.crop_pseudo_margins', margins,
                             'a key of the target dataset only')
            elif margins is not None:
                out['crop_pseudo_margins'] = list(margins)
                self._map(f'{path}.crop_pseudo_margins',
                          'train_dataloader.dataset.target.'
                          'crop_pseudo_margins')
        out['pipeline'] = self._pipeline(ds.pop('pipeline', None) or [],
                                         f'{path}.pipeline', role,
                                         labelled=ann is not None)
        self._leftover(ds, path)
        return out

    def _evaluator(self, iou_metrics):
        """The val/test evaluator: ``IoUMetric``, or the one the papers
        report for the source dataset (``SOURCE_EVALUATORS``)."""
        base = SOURCE_EVALUATORS.get(getattr(self, 'source_type', None))
        if base is None:
            return dict(type='IoUMetric', iou_metrics=list(iou_metrics))
        self._map(f'data.train.source type={self.source_type!r}',
                  f"val/test_evaluator type={base['type']!r} ("
                  + ', '.join(f'{k}={v!r}' for k, v in base.items()
                              if k != 'type') + ')')
        return dict(base, iou_metrics=list(iou_metrics))

    def _pipeline(self, steps, path, role, labelled):
        return self._finish_pipeline(self._steps(steps, path, role), role,
                                     labelled)

    def _steps(self, steps, path, role, scale=None):
        out = []
        for i, step in enumerate(steps):
            step = dict(step)
            p = f'{path}[{i}]'
            t = step.pop('type', None)
            if t == 'MultiScaleFlipAug':
                flip = step.pop('flip', False)
                ratios = step.pop('img_ratios', None)
                if flip or ratios:
                    self._reject(f'{p}.flip/img_ratios', (flip, ratios),
                                 'test-time augmentation: use mmseg '
                                 'TestTimeAug + tools/test.py --tta')
                out.extend(self._steps(step.pop('transforms', []),
                                       f'{p}.transforms', role,
                                       scale=step.pop('img_scale', None)))
                self._leftover(step, p)
                continue
            new = self._transform(t, step, p, role, scale)
            if new is not None:
                out.append(new)
            self._leftover(step, p)
        return out

    def _transform(self, t, step, p, role, scale=None):
        if t == 'LoadImageFromFile':
            new = dict(type=t)
            for k in ('to_float32', 'color_type', 'imdecode_backend'):
                if k in step:
                    new[k] = step.pop(k)
            return new
        if t == 'LoadAnnotations':
            if role == 'target':
                self._ignore(p, 'LoadAnnotations',
                             'ignored (no effect: target labels are never '
                             'trained on)')
                step.clear()
                return None
            new = dict(type=t)
            for k in ('reduce_zero_label', 'imdecode_backend'):
                if k in step:
                    new[k] = step.pop(k)
            return new
        if t == 'Resize':
            img_scale = step.pop('img_scale', None) or scale
            keep = step.pop('keep_ratio', True)
            ratio = step.pop('ratio_range', None)
            if isinstance(img_scale, list) and img_scale and \
                    isinstance(img_scale[0], (list, tuple)):
                self._reject(f'{p}.img_scale', img_scale,
                             'several scales (multiscale_mode)')
                return None
            if img_scale is None:
                self._reject(f'{p}.img_scale', None, 'a scale is required')
                return None
            if ratio is not None:
                new = dict(type='RandomResize', scale=tuple(img_scale),
                           ratio_range=tuple(ratio), keep_ratio=keep)
            else:
                new = dict(type='Resize', scale=tuple(img_scale),
                           keep_ratio=keep)
            self._map(f'{p} Resize(img_scale)', f"{new['type']}(scale)")
            return new
        if t == 'RandomCrop':
            new = dict(type=t)
            for k in ('crop_size', 'cat_max_ratio', 'ignore_index'):
                if k in step:
                    new[k] = step.pop(k)
            if role == 'source' or self.crop_size is None:
                self.crop_size = tuple(new.get('crop_size') or ()) or None
            return new
        if t == 'RandomFlip':
            prob = step.pop('prob', step.pop('flip_ratio', None))
            if prob is None:  # inside MultiScaleFlipAug(flip=False): no-op
                step.pop('direction', None)
                return None
            new = dict(type=t, prob=prob)
            if 'direction' in step:
                new['direction'] = step.pop('direction')
            return new
        if t == 'PhotoMetricDistortion':
            new = dict(type=t)
            for k in ('brightness_delta', 'contrast_range',
                      'saturation_range', 'hue_delta'):
                if k in step:
                    new[k] = step.pop(k)
            return new
        if t == 'Normalize':
            mean, std = step.pop('mean', None), step.pop('std', None)
            if mean is None or std is None:
                self._reject(p, 'Normalize', 'mean and std are required')
                return None
            norm = (list(mean), list(std), bool(step.pop('to_rgb', True)))
            self.norms.setdefault(role, norm)
            self._map(f'{p} Normalize', 'model.data_preprocessor mean/std/'
                      'bgr_to_rgb')
            return None
        if t == 'Pad':
            pad = dict(size=step.pop('size', None),
                       size_divisor=step.pop('size_divisor', None),
                       pad_val=step.pop('pad_val', 0),
                       seg_pad_val=step.pop('seg_pad_val', 255))
            if role == 'source' or self.pad is None:
                self.pad = pad
            self._map(f'{p} Pad', 'model.data_preprocessor size/pad_val/'
                      'seg_pad_val')
            return None
        if t in ('DefaultFormatBundle', 'ImageToTensor'):
            step.clear()
            return None
        if t == 'Collect':
            keys = list(step.pop('keys', []))
            step.pop('meta_keys', None)
            extra = [k for k in keys if k not in ('img', 'gt_semantic_seg')]
            if extra:
                self._reject(f'{p}.keys', extra, 'PackSegInputs packs img '
                             'and gt_semantic_seg only')
            return None
        self._reject(f'{p}.type', t, 'transform not converted')
        step.clear()
        return None

    def _finish_pipeline(self, steps, role, labelled):
        steps = [s for s in steps if s is not None]
        if role == 'test' and labelled and not any(
                s['type'] == 'LoadAnnotations' for s in steps):
            # mmseg 1.x evaluators read the labels from the pipeline
            steps.append(dict(type='LoadAnnotations'))
        steps.append(dict(type='PackSegInputs'))
        return steps
