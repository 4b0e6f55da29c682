"""``python -m mmplugins.list``: the catalogue of everything mmplugins adds.

For each registered class: its name, registry kind, the scopes it is visible
from, the module defining it, and its config arguments with defaults.
``--kind``/``--grep`` filter, ``--json`` prints machine-readable output.
"""
import argparse
import inspect
import json


def _arguments(cls):
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return []
    args = []
    for p in list(sig.parameters.values())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            args.append(('**' if p.kind == p.VAR_KEYWORD else '*') + p.name)
        elif p.default is inspect.Parameter.empty:
            args.append(p.name)
        else:
            args.append(f'{p.name}={p.default!r}')
    return args


def catalogue():
    """List of dicts, one per registered class (imports mmplugins)."""
    import mmplugins  # noqa: F401 - registers everything
    from mmplugins.registry import CATALOGUE
    rows = []
    for e in CATALOGUE:
        rows.append(
            dict(name=e.name,
                 kind=e.kind,
                 registry=('mmengine (root)' if e.toolboxes is None else
                           ', '.join(e.toolboxes)),
                 visible_from=e.visible_from,
                 skipped=e.skipped,
                 module=e.cls.__module__,
                 arguments=_arguments(e.cls),
                 summary=(inspect.getdoc(e.cls) or '').split('\n')[0]))
    return sorted(rows, key=lambda r: (r['kind'], r['name']))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--kind', help='only this registry kind')
    parser.add_argument('--grep', help='only names containing this text')
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args(argv)
    rows = catalogue()
    if args.kind:
        rows = [r for r in rows if r['kind'] == args.kind]
    if args.grep:
        rows = [r for r in rows if args.grep.lower() in r['name'].lower()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    kind = None
    for r in rows:
        if r['kind'] != kind:
            kind = r['kind']
            print(f'\n== {kind} ==')
        print(f"{r['name']}  [{r['registry']}; visible from "
              f"{', '.join(r['visible_from'])}]  {r['module']}")
        if r['summary']:
            print(f"    {r['summary']}")
        if r['skipped']:
            print(f"    (not registered in {', '.join(r['skipped'])}: "
                  'not installed)')
        for a in r['arguments']:
            print(f'    - {a}')
    print(f'\n{len(rows)} modules')


if __name__ == '__main__':
    main()
