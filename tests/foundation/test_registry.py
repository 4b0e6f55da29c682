"""Registry framework: visibility from every scope, catalogue, plugins."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
from mmengine.registry import DefaultScope

import mmplugins
from mmplugins.registry import (CATALOGUE, TOOLBOXES, get_registry,
                                register_module, toolbox_installed)

SCOPES = ('mmseg', 'mmdet', 'mmpretrain')


@pytest.fixture(scope='module', autouse=True)
def _toolboxes():
    import importlib
    for t in SCOPES:
        if toolbox_installed(t):
            importlib.import_module(f'{t}.utils').register_all_modules(
                init_default_scope=False)


def test_catalogue_is_not_empty_and_every_entry_resolves_from_its_scopes():
    assert len(CATALOGUE) >= 5
    for e in CATALOGUE:
        assert e.registered_in, f'{e.name} registered nowhere'
        for scope in e.visible_from:
            reg = get_registry(e.kind, None if scope == 'mmengine' else scope)
            # a bare type= resolves through the scope's registry chain
            with DefaultScope.overwrite_default_scope(scope):
                assert reg.get(e.name) is e.cls, (e.name, scope)
            # and a Registry.build from the mmengine root under that default
            # scope (what the Runner does) finds the same class
            root = get_registry(e.kind)
            with DefaultScope.overwrite_default_scope(scope):
                with root.switch_scope_and_registry(scope) as reg2:
                    assert reg2.get(e.name) is e.cls, (e.name, scope)


def test_root_registrations_are_visible_from_every_installed_toolbox():
    roots = [e for e in CATALOGUE if e.toolboxes is None]
    assert roots, 'expected toolbox-agnostic modules in the root registries'
    for e in roots:
        for t in SCOPES:
            if toolbox_installed(t):
                assert get_registry(e.kind, t).get(e.name) is e.cls


def test_toolbox_specific_modules_stay_in_their_toolbox():
    for e in CATALOGUE:
        if e.toolboxes is None:
            continue
        root = get_registry(e.kind)
        assert e.name not in root.module_dict, e.name


def test_decorator_skips_missing_toolboxes_and_rejects_typos():
    class Probe:
        pass
    from mmplugins import registry as r
    r._installed_cache['mmpretrain_fake'] = False
    old = r.TOOLBOXES
    r.TOOLBOXES = old + ('mmpretrain_fake', )
    try:
        register_module('hooks', toolboxes=('mmpretrain_fake', ))(Probe)
        entry = [e for e in CATALOGUE if e.cls is Probe][0]
        assert entry.skipped == ['mmpretrain_fake']
        assert entry.registered_in == []
    finally:
        r.TOOLBOXES = old
        CATALOGUE[:] = [e for e in CATALOGUE if e.cls is not Probe]
    with pytest.raises(KeyError, match='unknown registry kind'):
        register_module('heads')
    with pytest.raises(KeyError, match='unknown toolboxes'):
        register_module('models', toolboxes=('mmsegmentation', ))


def test_import_twice_is_harmless_and_does_not_set_a_default_scope():
    code = textwrap.dedent('''
        import importlib, sys
        from mmengine.registry import DefaultScope
        import mmplugins
        from mmplugins.registry import CATALOGUE
        n = len(CATALOGUE)
        assert DefaultScope.get_current_instance() is None
        for name in [m for m in list(sys.modules) if m.startswith('mmplugins.')]:
            importlib.reload(sys.modules[name])
        importlib.reload(mmplugins)
        assert len(CATALOGUE) == n, (len(CATALOGUE), n)
        assert DefaultScope.get_current_instance() is None
        print('OK', n)
    ''')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith('OK')


def test_list_cli_covers_every_registered_class():
    out = subprocess.run([sys.executable, '-m', 'mmplugins.list', '--json'],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout)
    listed = {(r['kind'], r['name']) for r in rows}
    expected = {(e.kind, e.name) for e in CATALOGUE}
    assert listed == expected
    uda = [r for r in rows if r['name'] == 'UDASegmentor'][0]
    assert 'mmseg' in uda['visible_from']
    assert any(a.startswith('pseudo_threshold=0.968') for a in uda['arguments'])
    text = subprocess.run([sys.executable, '-m', 'mmplugins.list'],
                          capture_output=True, text=True, timeout=300).stdout
    assert 'UDASegmentor' in text and f'{len(rows)} modules' in text


def test_info_cli_reports_stack_and_compiled_ops():
    out = subprocess.run([sys.executable, '-m', 'mmplugins.info'],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f'mmplugins: {mmplugins.__version__}' in out.stdout
    for pkg in ('torch', 'mmengine', 'mmcv', 'mmseg', 'mmdet'):
        assert f'{pkg}: ' in out.stdout
    assert 'mmcv ops: compiled' in out.stdout


def test_third_party_plugin_entry_point_is_imported(tmp_path):
    """A tiny installed plugin (dist-info with an entry point on sys.path)."""
    pkg = tmp_path / 'tiny_mmplugin'
    pkg.mkdir()
    (pkg / '__init__.py').write_text(textwrap.dedent('''
        from mmplugins.registry import register_module

        @register_module('hooks')
        class TinyPluginHook:
            """A hook from a third-party package."""
            def __init__(self, every=3):
                self.every = every
    '''))
    dist = tmp_path / 'tiny_mmplugin-0.0.1.dist-info'
    dist.mkdir()
    (dist / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: tiny-mmplugin\nVersion: 0.0.1\n')
    (dist / 'entry_points.txt').write_text(
        '[mmplugins]\ntiny = tiny_mmplugin\n')
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    code = ('import mmplugins\n'
            'from mmengine.registry import HOOKS\n'
            'from mmplugins.plugins import LOADED\n'
            "h = HOOKS.build(dict(type='TinyPluginHook', every=5))\n"
            "print(sorted(LOADED), h.every)\n")
    out = subprocess.run([sys.executable, '-c', code], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "['tiny'] 5"
    listing = subprocess.run([sys.executable, '-m', 'mmplugins.list',
                              '--grep', 'TinyPlugin'], env=env,
                             capture_output=True, text=True, timeout=300)
    assert 'TinyPluginHook' in listing.stdout and 'every=3' in listing.stdout
    # a broken plugin fails loudly, naming the entry point
    (pkg / '__init__.py').write_text('raise RuntimeError("boom")\n')
    out = subprocess.run([sys.executable, '-c', 'import mmplugins'],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "entry point 'tiny'" in out.stderr and 'boom' in out.stderr
