"""What every section of the reference-config converter shares: the
error, and the three lists every reference key ends in (mapped / ignored /
unsupported)."""


class ConversionError(Exception):
    """The reference config cannot be converted (unsupported keys listed)."""


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


class _Expr:
    """A value written as Python source (``1500 + 1``) in the output."""

    def __init__(self, text):
        self.text = text


class SectionBase:
    """Notes of a conversion; the sections pop keys and record each one."""

    def _map(self, src, dst):
        self.mapped.append(f'{src} -> {dst}')

    def _ignore(self, path, value, why):
        self.ignored.append(f'{path}={_short(value)}: {why}')

    def _reject(self, path, value, why=''):
        msg = f'{path}={_short(value)} has no equivalent'
        self.unsupported.append(msg + (f' ({why})' if why else ''))

    def _leftover(self, d, path):
        for k in list(d):
            self._reject(f'{path}.{k}' if path else k, d.pop(k))
