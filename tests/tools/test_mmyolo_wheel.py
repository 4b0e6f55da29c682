"""make install's mmyolo: PyPI's 0.6.0 wheel with only the mmcv cap raised
(tools/install/repack_mmyolo.py), and the one error when mmyolo is missing or
unpatched (mmplugins/utils/mmyolo_check.py)."""
import base64
import difflib
import hashlib
import importlib.metadata
import importlib.util
import os
import os.path as osp
import subprocess
import sys
import zipfile

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PYPI_DIR = osp.join(ROOT, '.cache', 'wheels', 'pypi')
PYPI = osp.join(PYPI_DIR, 'mmyolo-0.6.0-py3-none-any.whl')
NAME = 'mmyolo-0.6.0+mmcv21-py3-none-any.whl'
BUILT = [osp.join(ROOT, '..', 'shared', 'wheels', NAME),
         osp.join(ROOT, '.cache', 'wheels', NAME)]


def _tool(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


repack = _tool('_repack_mmyolo',
               osp.join(ROOT, 'tools', 'install', 'repack_mmyolo.py'))


@pytest.fixture(scope='module')
def pypi_wheel():
    """PyPI's wheel, cached by make install; downloaded here if absent."""
    if not osp.isfile(PYPI):
        proc = subprocess.run(
            [sys.executable, '-m', 'pip', 'download', '-q', '--no-deps',
             '--only-binary', ':all:', 'mmyolo==0.6.0', '-d', PYPI_DIR],
            capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 or not osp.isfile(PYPI):
            pytest.skip(f'PyPI\'s mmyolo 0.6.0 wheel is not in {PYPI} and '
                        'could not be downloaded (offline?): '
                        + proc.stderr.strip()[-300:])
    return PYPI


def _record_hash(data):
    return 'sha256=' + base64.urlsafe_b64encode(
        hashlib.sha256(data).digest()).rstrip(b'=').decode()


def assert_only_the_cap_differs(pypi, built):
    old_info, new_info = 'mmyolo-0.6.0.dist-info/', \
        'mmyolo-0.6.0+mmcv21.dist-info/'
    with zipfile.ZipFile(pypi) as a, zipfile.ZipFile(built) as b:
        old = {i.filename: a.read(i) for i in a.infolist()}
        new = {i.filename: b.read(i) for i in b.infolist()}
    renamed = {n.replace(old_info, new_info) if n.startswith(old_info)
               else n: n for n in old}
    assert set(new) == set(renamed)
    changed = sorted(n for n in new
                     if n != new_info + 'RECORD'
                     and new[n] != old[renamed[n]])
    assert changed == sorted(['mmyolo/__init__.py', new_info + 'METADATA'])
    # code: exactly one line, the cap, to mmdet 3.3.0's own limit (< 2.2.0)
    diff = [line for line in difflib.unified_diff(
        old['mmyolo/__init__.py'].decode().splitlines(),
        new['mmyolo/__init__.py'].decode().splitlines(), lineterm='', n=0)
        if line[:1] in '+-' and line[:3] not in ('+++', '---')]
    assert diff == ["-mmcv_maximum_version = '2.1.0'",
                    "+mmcv_maximum_version = '2.2.0'"]
    diff = [line for line in difflib.unified_diff(
        old[old_info + 'METADATA'].decode().splitlines(),
        new[new_info + 'METADATA'].decode().splitlines(), lineterm='', n=0)
        if line[:1] in '+-' and line[:3] not in ('+++', '---')]
    assert diff == ['-Version: 0.6.0', '+Version: 0.6.0+mmcv21']
    # RECORD lists every other file with its real hash and size
    rows = [r.rsplit(',', 2) for r in
            new[new_info + 'RECORD'].decode().splitlines()]
    listed = {path: (h, size) for path, h, size in rows}
    assert set(listed) == set(new)
    for path, data in new.items():
        if path != new_info + 'RECORD':
            assert listed[path] == (_record_hash(data), str(len(data))), path


def test_repack_changes_only_the_cap(pypi_wheel, tmp_path):
    out = repack.repack(pypi_wheel, str(tmp_path / 'a'))
    assert osp.basename(out) == NAME
    assert_only_the_cap_differs(pypi_wheel, out)
    # deterministic: a second repack gives the same bytes
    again = repack.repack(pypi_wheel, str(tmp_path / 'b'))
    assert open(out, 'rb').read() == open(again, 'rb').read()


@pytest.mark.parametrize('built', BUILT, ids=['shared', 'cache'])
def test_install_wheel_changes_only_the_cap(pypi_wheel, built):
    if not osp.isfile(built):
        pytest.skip(f'no {built} (make install uses ../shared/wheels when it '
                    'has the wheel, else repacks into .cache/wheels)')
    assert_only_the_cap_differs(pypi_wheel, built)


def test_installed_mmyolo_is_the_patched_build(pypi_wheel):
    try:
        version = importlib.metadata.version('mmyolo')
    except importlib.metadata.PackageNotFoundError:
        pytest.skip('mmyolo is not installed (make install installs it)')
    assert version == '0.6.0+mmcv21'
    spec = importlib.util.find_spec('mmyolo')
    with zipfile.ZipFile(pypi_wheel) as z:
        pypi_init = z.read('mmyolo/__init__.py')
    installed = open(spec.origin, 'rb').read()
    assert installed == repack.patch_init(pypi_init)


def test_repack_refuses_another_file(tmp_path):
    bad = tmp_path / 'mmyolo-0.6.0-py3-none-any.whl'
    with zipfile.ZipFile(bad, 'w') as z:
        z.writestr('mmyolo/__init__.py', "mmcv_maximum_version = '2.2.0'\n")
        z.writestr('mmyolo-0.6.0.dist-info/METADATA', 'Name: mmyolo\n'
                   'Version: 0.6.0\n')
        z.writestr('mmyolo-0.6.0.dist-info/RECORD', '')
    with pytest.raises(ValueError, match="expected exactly one "
                       "\"mmcv_maximum_version = '2.1.0'\""):
        repack.repack(str(bad), str(tmp_path / 'out'))
    assert not os.listdir(tmp_path / 'out')  # nothing half-written


CHECK = osp.join(ROOT, 'mmplugins', 'utils', 'mmyolo_check.py')
PROBE = ('import importlib.util as u, sys\n'
         f's = u.spec_from_file_location("c", {CHECK!r})\n'
         'm = u.module_from_spec(s); s.loader.exec_module(m)\n'
         'm.require_mmyolo()\n')


def test_unpatched_pypi_build_one_error(pypi_wheel, tmp_path):
    """PyPI's wheel really installed (into a folder first on the path)."""
    target = str(tmp_path / 'site')
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q',
                    '--no-deps', '--no-index', '--target', target,
                    pypi_wheel], check=True, capture_output=True,
                   timeout=120)
    proc = subprocess.run([sys.executable, '-c', PROBE], capture_output=True,
                          text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=target))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('ImportError: mmyolo 0.6.0 from PyPI is '
                           'installed')
    assert '`make install`' in last and 'install_mmyolo.sh' in last


def test_missing_mmyolo_one_error(monkeypatch):
    mmyolo_check = _tool('_mmyolo_check', CHECK)

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(mmyolo_check.importlib.metadata, 'version', missing)
    with pytest.raises(ImportError, match=r'mmyolo is not installed .*'
                       r'`make install`'):
        mmyolo_check.require_mmyolo()
