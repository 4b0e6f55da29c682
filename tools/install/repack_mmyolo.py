#!/usr/bin/env python3
"""Repack PyPI's mmyolo 0.6.0 wheel as ``mmyolo==0.6.0+mmcv21``.

    python tools/install/repack_mmyolo.py PYPI_WHEEL OUT_DIR

Why: mmyolo 0.6.0 (the last release, GPL-3.0) asserts at import that
``mmcv < 2.1.0`` (``mmcv_maximum_version = '2.1.0'`` in
``mmyolo/__init__.py``), while our stack pins mmcv 2.1.0 -- the version
mmdet 3.3.0, which mmyolo builds on, itself accepts (``< 2.2.0``). Its
modelling code runs unchanged on mmcv 2.1.0. So the one code change is that
cap, raised to mmdet 3.3.0's own limit ``'2.2.0'``; everything else is
PyPI's bytes. The metadata follows: the dist-info folder and ``Version:``
carry the local version label ``+mmcv21`` (so ``pip list`` and
``importlib.metadata`` tell the patched build from PyPI's), and ``RECORD``
lists the new hashes. ``mmyolo.__version__`` stays ``'0.6.0'`` (code, not
metadata). The output is deterministic: same input, same bytes (zip entry
order and timestamps are PyPI's).

Standard library only: it runs before anything else is installed.
"""
import base64
import hashlib
import os
import sys
import tempfile
import zipfile

NAME = 'mmyolo'
VERSION = '0.6.0'
LOCAL = 'mmcv21'
NEW_VERSION = f'{VERSION}+{LOCAL}'
PATCH_FILE = 'mmyolo/__init__.py'
CAP_OLD = b"mmcv_maximum_version = '2.1.0'"
CAP_NEW = b"mmcv_maximum_version = '2.2.0'"
OLD_INFO = f'{NAME}-{VERSION}.dist-info/'
NEW_INFO = f'{NAME}-{NEW_VERSION}.dist-info/'
PYPI_WHEEL = f'{NAME}-{VERSION}-py3-none-any.whl'
OUT_WHEEL = f'{NAME}-{NEW_VERSION}-py3-none-any.whl'


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return 'sha256=' + base64.urlsafe_b64encode(digest).rstrip(b'=').decode()


def patch_init(data: bytes) -> bytes:
    """The one code change; refuses a file that is not PyPI's 0.6.0."""
    if data.count(CAP_OLD) != 1:
        raise ValueError(f'{PATCH_FILE}: expected exactly one '
                         f'{CAP_OLD.decode()!r} (mmyolo 0.6.0 from PyPI), '
                         f'found {data.count(CAP_OLD)}')
    return data.replace(CAP_OLD, CAP_NEW)


def patch_metadata(data: bytes) -> bytes:
    old = f'\nVersion: {VERSION}\n'.encode()
    if data.count(old) != 1:
        raise ValueError(f'METADATA: expected one line "Version: {VERSION}"')
    return data.replace(old, f'\nVersion: {NEW_VERSION}\n'.encode(), 1)


def repack(src: str, out_dir: str) -> str:
    """Write ``OUT_DIR/mmyolo-0.6.0+mmcv21-py3-none-any.whl``; return it."""
    if os.path.basename(src) != PYPI_WHEEL:
        raise ValueError(f'expected PyPI\'s {PYPI_WHEEL}, got {src}')
    os.makedirs(out_dir, exist_ok=True)
    dst = os.path.join(out_dir, OUT_WHEEL)
    with zipfile.ZipFile(src) as zin:
        infos = zin.infolist()
        names = [i.filename for i in infos]
        for need in (PATCH_FILE, OLD_INFO + 'METADATA', OLD_INFO + 'RECORD'):
            if need not in names:
                raise ValueError(f'{src}: no {need}; not mmyolo {VERSION}')
        entries = []
        for info in infos:
            data = zin.read(info)
            name = info.filename
            if name == PATCH_FILE:
                data = patch_init(data)
            if name.startswith(OLD_INFO):
                name = NEW_INFO + name[len(OLD_INFO):]
                if name == NEW_INFO + 'METADATA':
                    data = patch_metadata(data)
            entries.append((info, name, data))
    record_name = NEW_INFO + 'RECORD'
    lines = [f'{name},{_record_hash(data)},{len(data)}'
             for _, name, data in entries if name != record_name]
    record = ('\n'.join(lines + [f'{record_name},,']) + '\n').encode()
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix='.whl.tmp')
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, 'w') as zout:
            for info, name, data in entries:
                if name == record_name:
                    data = record
                new = zipfile.ZipInfo(name, date_time=info.date_time)
                new.compress_type = zipfile.ZIP_DEFLATED
                new.external_attr = info.external_attr
                new.create_system = info.create_system
                zout.writestr(new, data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dst


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(repack(argv[0], argv[1]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
