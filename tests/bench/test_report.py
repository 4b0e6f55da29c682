"""bench/report.py: the committed README Results section and the tables of
docs/benchmarks.md are exactly what the report renders from bench/results;
bad input fails with one message naming the file and the key; derived
figures (mean ± std, per-seed deltas, ratios) are computed from the data.
"""
import json
import os.path as osp
import shutil
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'bench'))

import report  # noqa: E402

UDA = 'bench/results/uda_ablation_reference/uda_ablation.json'
STEP = 'bench/results/latest/uda_step.json'


def test_committed_text_matches_the_results():
    diff = report.check()
    assert diff == '', ('README.md / docs/benchmarks.md differ from what '
                        'bench/report.py renders; run `make report`:\n'
                        + diff[:4000])
    assert report.main(['--check']) == 0


def test_every_readme_number_is_in_the_rendered_block():
    """The Results section holds nothing but the rendered block."""
    text = open(osp.join(ROOT, 'README.md')).read()
    section = text[text.index('## Results'):text.index('\n## ', text.index(
        '## Results') + 1)]
    start, end = report.markers('results')
    outside = section.replace(
        section[section.index(start):section.index(end) + len(end)], '')
    assert not any(ch.isdigit() for ch in outside), outside


@pytest.fixture
def tree(tmp_path):
    """A copy of bench/results and of the two target files."""
    shutil.copytree(osp.join(ROOT, 'bench', 'results'),
                    tmp_path / 'bench' / 'results')
    (tmp_path / 'docs').mkdir()
    for rel in report.TARGETS:
        shutil.copy(osp.join(ROOT, rel), tmp_path / rel)
    return tmp_path


def edit(root, rel, fn):
    path = root / rel
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def render_error(root):
    with pytest.raises(report.ReportError) as e:
        report.render(str(root))
    return str(e.value)


def test_missing_provenance_names_the_file(tree):
    edit(tree, STEP, lambda d: d.pop('provenance'))
    msg = render_error(tree)
    assert msg.startswith(STEP) and "'provenance'" in msg
    edit(tree, STEP, lambda d: d.update(provenance=dict(commit='x')))
    msg = render_error(tree)
    assert msg.startswith(STEP) and 'provenance.dirty' in msg


def test_missing_key_names_the_file_and_key(tree):
    edit(tree, STEP, lambda d: d.pop('overhead_ratio'))
    msg = render_error(tree)
    assert msg.startswith(STEP) and "'overhead_ratio'" in msg
    shutil.copy(osp.join(ROOT, STEP), tree / STEP)
    edit(tree, UDA, lambda d: d.pop('runs'))
    msg = render_error(tree)
    assert msg.startswith(UDA) and "'runs'" in msg
    shutil.copy(osp.join(ROOT, UDA), tree / UDA)
    edit(tree, 'bench/results/gpu/uda_step_h100.json',
         lambda d: d['memory'].pop('peak_ratio'))
    msg = render_error(tree)
    assert msg.startswith('bench/results/gpu/uda_step_h100.json')
    assert "'memory.peak_ratio'" in msg


def test_missing_file_and_stale_entry_with_provenance(tree):
    (tree / report.REAL_LOADER).unlink()
    msg = render_error(tree)
    assert msg.startswith(report.REAL_LOADER) and 'missing' in msg
    shutil.copy(osp.join(ROOT, report.REAL_LOADER), tree / report.REAL_LOADER)
    # the allow-list cannot outlive its reason
    rel = report.MASK_CLS
    edit(tree, rel, lambda d: d.update(provenance={}))
    msg = render_error(tree)
    assert msg.startswith(rel) and 'STALE' in msg


def test_every_stale_entry_is_read_and_labelled():
    res = report.Results()
    text = '\n'.join(report.readme_results(res) + report.docs_gpu(res))
    assert set(report.STALE) <= set(res.read)
    assert text.count('**Stale') >= 4
    for rel, data in res.read.items():
        assert ('provenance' in data) != (rel in report.STALE), rel


def test_markers_are_required(tree):
    readme = tree / 'README.md'
    readme.write_text(readme.read_text().replace(
        '<!-- report:results:end -->', ''))
    with pytest.raises(report.ReportError, match='README.md: expected one'):
        report.render(str(tree), str(tree))


def test_derived_figures_are_computed(tree):
    def set_miou(d):
        values = dict(source_only=[10, 12, 14], dual_branch=[11, 12, 13],
                      mic=[20, 20, 20], full=[20, 23, 26])
        for r in d['runs']:
            r['mIoU'] = values[r['variant']][r['seed']]
    edit(tree, UDA, set_miou)
    def set_loader(d):
        d['demand_items_per_s'] = 4.0
        next(iter(d['variants'].values()))['items_per_s'] = 2.0
    edit(tree, report.REAL_LOADER, set_loader)
    old, new = report.render(str(tree), str(tree))['README.md']
    assert ('| 12.00 ± 2.00 | 12.00 ± 1.00 (+0.00 ± 1.00) | '
            '20.00 ± 0.00 (+8.00 ± 2.00) | **23.00 ± 3.00 (+11.00 ± 1.00)** |'
            ) in new
    assert '| 2.00 | 0.50× | 4.0 |' in new  # items/s, x demand, workers
    # --check reports the difference as a diff, write mode fixes it
    diff = report.check(str(tree), str(tree))
    assert '+| 12.00 ± 2.00 |' in diff
    (tree / 'README.md').write_text(new)
    (tree / 'docs' / 'benchmarks.md').write_text(
        report.render(str(tree), str(tree))['docs/benchmarks.md'][1])
    assert report.check(str(tree), str(tree)) == ''


def test_text_outside_the_markers_is_kept(tree):
    readme = tree / 'README.md'
    readme.write_text(readme.read_text().replace('## Layout',
                                                 '## Layout\n\nkeep me 42'))
    new = report.render(str(tree), str(tree))['README.md'][1]
    assert 'keep me 42' in new


def test_regenerated_ablations_leave_the_stale_list(tree, monkeypatch):
    """After `--seeds` runs the report reads ONE file per ablation, with
    provenance, and drops the stale label once the allow-list entries go."""
    prov = dict(commit='a' * 40, dirty=False, command='python bench/x.py',
                machine=dict(device='cpu'), date='2026-12-03T00:00:00')
    legacy = [json.loads((tree / rel).read_text())
              for rel in report.DIET_FILES]
    (tree / report.DIET_FILES[0]).write_text(json.dumps(dict(
        per_seed=legacy, command='python bench/diet_ablation.py',
        provenance=prov)))
    for rel in report.DIET_FILES[1:]:  # the single-seed files go
        (tree / rel).unlink()
    runs = json.loads((tree / report.MASK_CLS).read_text())['runs']
    two = [dict(r, seed=s, metrics={k: v + s for k, v in
                                    r['metrics'].items()})
           for s in (0, 2) for r in runs]
    edit(tree, report.MASK_CLS, lambda d: d.update(runs=two,
                                                    provenance=prov))
    # still allow-listed: refused, naming the entry to remove
    assert 'STALE' in render_error(tree)
    stale = {k: v for k, v in report.STALE.items()
             if k not in report.DIET_FILES and k != report.MASK_CLS}
    monkeypatch.setattr(report, 'STALE', stale)
    new = report.render(str(tree), str(tree))['README.md'][1]
    assert '**Detection — diet' in new and 'Stale: detection' not in new
    assert 'mean AP 27.7 ± 3.3 (full) → 38.2 ± 2.6' in new
    assert '**Classification — 18-way' in new
    assert 'seeds [0, 2], mean ± std' in new
    assert '18-way + DefaultSampler: 28.4 ± 1.4' in new  # 27.35, 29.35


def test_every_results_file_has_provenance_or_a_reason(tree):
    report.check_all_results(str(tree))
    (tree / 'bench/results/latest/extra.json').write_text('{"x": 1}')
    msg = render_error(tree)
    assert msg.startswith('bench/results/latest/extra.json')
    assert "'provenance'" in msg
    for rel in list(report.STALE) + list(report.UNREAD):
        assert osp.isfile(osp.join(ROOT, rel)), f'{rel}: listed, not there'


def test_docs_results_blocks_hold_the_scripts_table(tree):
    """``<!-- results:PATH.md:begin/end -->`` in any docs/*.md holds the
    Markdown table of PATH.md; PATH.json must carry provenance."""
    rel = 'bench/results/hrda_cost.md'
    doc = tree / 'docs' / 'extra.md'
    doc.write_text(f'text\n<!-- results:{rel}:begin -->\nold\n'
                   f'<!-- results:{rel}:end -->\nafter 1.0\n')
    out = report.render(str(tree))
    old, new = out['docs/extra.md']
    table = [ln.rstrip('\n') for ln in open(tree / rel) if ln.startswith('|')]
    assert table and new == (f'text\n<!-- results:{rel}:begin -->\n'
                             + '\n'.join(table) +
                             f'\n<!-- results:{rel}:end -->\nafter 1.0\n')
    assert report.check(str(tree)) != ''  # 'old' differs from the table
    # the JSON beside it must carry provenance
    edit(tree, 'bench/results/hrda_cost.json',
         lambda d: d.pop('provenance'))
    msg = render_error(tree)
    assert 'bench/results/hrda_cost.json' in msg and 'provenance' in msg
