"""One decorator that registers a class into every toolbox it applies to.

Rule (see ``docs/registry.md``):

* toolbox-agnostic pieces (samplers, transforms, hooks, ...) go into the
  **mmengine root** registry of their kind. Every OpenMMLab 2.0 toolbox
  registry is a child of the root, and a child looks a bare ``type=`` up in
  its ancestors, so one registration is visible from ``default_scope='mmseg'``,
  ``'mmdet'``, ``'mmpretrain'`` and ``None`` alike.
* toolbox-specific pieces (an mmseg decode head, an mmdet detector part, an
  mmpretrain head) go into the registry of **that toolbox**, where its base
  classes and builders live. A toolbox that is not installed is skipped.

Example::

    from mmplugins.registry import register_module

    @register_module('data_samplers')                   # mmengine root
    class DietSampler(Sampler): ...

    @register_module('models', toolboxes=('mmseg', ))   # mmseg only
    class DAFormerHead(BaseDecodeHead): ...
"""
import importlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine import registry as mmengine_registry

#: Toolboxes mmplugins knows how to register into, by import name.
TOOLBOXES: Tuple[str, ...] = ('mmseg', 'mmdet', 'mmpretrain')

#: Registry kinds accepted by :func:`register_module` -> attribute name in
#: ``mmengine.registry`` / ``<toolbox>.registry``.
REGISTRY_KINDS: Dict[str, str] = {
    'models': 'MODELS',
    'datasets': 'DATASETS',
    'data_samplers': 'DATA_SAMPLERS',
    'transforms': 'TRANSFORMS',
    'hooks': 'HOOKS',
    'metrics': 'METRICS',
    'evaluator': 'EVALUATOR',
    'optimizers': 'OPTIMIZERS',
    'optim_wrappers': 'OPTIM_WRAPPERS',
    'optim_wrapper_constructors': 'OPTIM_WRAPPER_CONSTRUCTORS',
    'param_schedulers': 'PARAM_SCHEDULERS',
    'model_wrappers': 'MODEL_WRAPPERS',
    'loops': 'LOOPS',
    'visualizers': 'VISUALIZERS',
    'vis_backends': 'VISBACKENDS',
    'task_utils': 'TASK_UTILS',
}


@dataclass
class CatalogueEntry:
    """What one :func:`register_module` call added."""
    cls: type
    name: str
    kind: str
    toolboxes: Optional[Tuple[str, ...]]
    # scope names of the registries the class actually went into
    registered_in: List[str] = field(default_factory=list)
    # toolboxes requested but not installed
    skipped: List[str] = field(default_factory=list)

    @property
    def visible_from(self) -> List[str]:
        """Default scopes from which a bare ``type=name`` resolves."""
        if self.toolboxes is None:  # root: every installed toolbox sees it
            return ['mmengine'] + [t for t in TOOLBOXES if toolbox_installed(t)]
        return list(self.registered_in)


#: Every class registered through :func:`register_module`, in order.
CATALOGUE: List[CatalogueEntry] = []

_installed_cache: Dict[str, bool] = {}


def toolbox_installed(toolbox: str) -> bool:
    """Whether ``<toolbox>.registry`` can be imported (cached)."""
    if toolbox not in _installed_cache:
        try:
            importlib.import_module(f'{toolbox}.registry')
            _installed_cache[toolbox] = True
        except ImportError:
            _installed_cache[toolbox] = False
    return _installed_cache[toolbox]


def get_registry(kind: str, toolbox: Optional[str] = None):
    """Return the registry object of ``kind`` in ``toolbox`` (None = root)."""
    if kind not in REGISTRY_KINDS:
        raise KeyError(f'mmplugins.registry: unknown registry kind {kind!r}; '
                       f'expected one of {sorted(REGISTRY_KINDS)}')
    attr = REGISTRY_KINDS[kind]
    module = (mmengine_registry if toolbox is None else
              importlib.import_module(f'{toolbox}.registry'))
    if not hasattr(module, attr):
        raise KeyError(f'{module.__name__} has no registry {attr} '
                       f'(kind {kind!r})')
    return getattr(module, attr)


def register_module(kind: str,
                    toolboxes: Optional[Sequence[str]] = None,
                    name: Optional[str] = None,
                    force: bool = False):
    """Class decorator registering into the right registries.

    Args:
        kind (str): Registry kind, a key of :data:`REGISTRY_KINDS`
            (``'models'``, ``'data_samplers'``, ``'transforms'``, ...).
        toolboxes (Sequence[str], optional): Toolboxes whose registry of
            ``kind`` receives the class, e.g. ``('mmseg', )``. ``None``
            (default) registers into the mmengine root registry, visible from
            every toolbox. Toolboxes that are not installed are skipped.
        name (str, optional): Registered name. Defaults to the class name.
        force (bool): Overwrite an existing entry of the same name. Defaults
            to False. Re-registering the *same* class (module re-import) is
            always harmless.
    """
    if kind not in REGISTRY_KINDS:
        raise KeyError(f'register_module: unknown registry kind {kind!r}; '
                       f'expected one of {sorted(REGISTRY_KINDS)}')
    if toolboxes is not None:
        toolboxes = tuple(toolboxes)
        unknown = [t for t in toolboxes if t not in TOOLBOXES]
        if unknown:
            raise KeyError(f'register_module: unknown toolboxes {unknown}; '
                           f'expected a subset of {TOOLBOXES}')

    def _register(cls):
        key = name or cls.__name__
        entry = CatalogueEntry(cls=cls, name=key, kind=kind,
                               toolboxes=toolboxes)
        targets = [None] if toolboxes is None else list(toolboxes)
        for toolbox in targets:
            if toolbox is not None and not toolbox_installed(toolbox):
                entry.skipped.append(toolbox)
                continue
            registry = get_registry(kind, toolbox)
            existing = registry._module_dict.get(key)
            same = (existing is not None
                    and existing.__module__ == cls.__module__
                    and existing.__qualname__ == cls.__qualname__)
            registry.register_module(name=key, module=cls,
                                     force=force or same)
            entry.registered_in.append(registry.scope)
        # a re-import replaces the previous record of the same class
        CATALOGUE[:] = [
            e for e in CATALOGUE
            if not (e.name == key and e.kind == kind
                    and e.cls.__module__ == cls.__module__)
        ]
        CATALOGUE.append(entry)
        return cls

    return _register
