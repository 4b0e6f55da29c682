"""The reference's top-level runtime keys (seed, DDP, logging, launcher
metadata, helper variables) -> mmengine runtime keys."""
from .base import SectionBase
from .tables import HELPERS, METADATA, METADATA_PREFIXES


class RuntimeSection(SectionBase):
    """``_runtime`` and ``_log_config`` (mixed into the Converter)."""

    def _runtime(self, ref):
        out = self.out
        seed = ref.pop('seed', None)
        out['randomness'] = dict(seed=seed)
        self._map('seed', 'randomness.seed')
        if 'deterministic' in ref:
            out['randomness']['deterministic'] = ref.pop('deterministic')
            self._map('deterministic', 'randomness.deterministic')
        # a UDASegmentor steps its own optimizer: its DDP wrapper must call
        # the model's train_step; a baseline is a plain segmentor
        wrapper = dict(type='MMDistributedDataParallel') if self.baseline \
            else dict(type='MMSeparateDistributedDataParallel',
                      broadcast_buffers=False)
        wrapper['find_unused_parameters'] = False
        if 'find_unused_parameters' in ref:
            wrapper['find_unused_parameters'] = bool(
                ref.pop('find_unused_parameters'))
            self._map('find_unused_parameters',
                      'model_wrapper_cfg.find_unused_parameters')
        out['model_wrapper_cfg'] = wrapper
        env = {}
        if 'dist_params' in ref:
            dp = dict(ref.pop('dist_params'))
            if 'backend' in dp:
                env['dist_cfg'] = dict(backend=dp.pop('backend'))
                self._map('dist_params.backend', 'env_cfg.dist_cfg.backend')
            self._leftover(dp, 'dist_params')
        if 'cudnn_benchmark' in ref:
            env['cudnn_benchmark'] = ref.pop('cudnn_benchmark')
            self._map('cudnn_benchmark', 'env_cfg.cudnn_benchmark')
        if env:
            out['env_cfg'] = env
        for k in ('log_level', 'load_from', 'work_dir'):
            if k in ref:
                out[k] = ref.pop(k)
                self._map(k, k)
        if 'resume_from' in ref:
            resume = ref.pop('resume_from')
            if resume:
                out['load_from'] = resume
                out['resume'] = True
                self._map('resume_from', 'load_from + resume=True')
            else:
                self._ignore('resume_from', resume, 'ignored (no effect)')
        if 'workflow' in ref:
            wf = ref.pop('workflow')
            if [tuple(w) for w in wf] == [('train', 1)]:
                self._ignore('workflow', wf, 'ignored (no effect)')
            else:
                self._reject('workflow', wf, 'only training is run')
        if 'log_config' in ref:
            self._log_config(dict(ref.pop('log_config')))
        for k in list(ref):
            if k in METADATA or k.startswith(METADATA_PREFIXES):
                why = METADATA.get(k, 'launcher bookkeeping')
                self._ignore(k, ref.pop(k),
                             f'ignored (no effect: metadata; {why})')
            elif k in HELPERS or k.endswith('_pipeline'):
                self._ignore(k, ref.pop(k), 'ignored (helper variable: '
                             'read where it is used)')

    def _log_config(self, lc):
        hooks = self.out.setdefault('default_hooks', {})
        if 'interval' in lc:
            hooks['logger'] = dict(interval=lc.pop('interval'))
            self._map('log_config.interval', 'default_hooks.logger.interval')
        if 'img_interval' in lc:
            self._ignore('log_config.img_interval', lc.pop('img_interval'),
                         'ignored (no effect: HRDA debug images)')
        for i, h in enumerate(lc.pop('hooks', []) or []):
            h = dict(h)
            if h.get('type') in ('TextLoggerHook', 'TensorboardLoggerHook'):
                self._ignore(f'log_config.hooks[{i}]', h.get('type'),
                             'ignored (default_runtime.py logs text and '
                             'TensorBoard)')
            else:
                self._reject(f'log_config.hooks[{i}]', h)
        self._leftover(lc, 'log_config')
