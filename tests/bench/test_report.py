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

import mask_cls_ablation  # noqa: E402
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
    rel = 'bench/results/gpu/scaling_h100.json'
    assert rel in report.STALE
    edit(tree, rel, lambda d: d.update(provenance={}))
    msg = render_error(tree)
    assert msg.startswith(rel) and 'STALE' in msg


def test_every_stale_entry_is_read_and_labelled():
    res = report.Results()
    text = '\n'.join(report.readme_results(res) + report.docs_gpu(res))
    assert set(report.STALE) <= set(res.read)
    assert text.count('**Stale') >= 3  # the H100 step, scaling, slide rows
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


def test_seeded_ablations_render_derived_figures(tree):
    """The diet and classification paragraphs: per-seed differences and
    mean ± std computed from the --seeds files, and the classification
    ranking verdict over the schedules."""
    def set_diet(d):
        for seed, r in enumerate(d['per_seed']):
            r['ap']['full']['mean']['ap'] = 0.20 + 0.01 * seed
            r['ap']['diet_ft']['mean']['ap'] = 0.30 - 0.01 * seed
    edit(tree, report.DIET, set_diet)

    def same_order(d):
        for r in d['runs']:           # row i scores 10 * i + seed
            i = [c for _, _, c in mask_cls_ablation.RUNS].index(r['config'])
            r['metrics']['joint_f1'] = 10.0 * i + r['seed']
    for rel in report.MASK_CLS_SCHEDULES:
        edit(tree, rel, same_order)
    new = report.render(str(tree), str(tree))['README.md'][1]
    # full 20, 21, 22 -> diet 30, 29, 28: +10, +8, +6
    assert 'mean AP 21.0 ± 1.0 (full) → 29.0 ± 1.0' in new
    assert ('per-seed difference +8.0 ± 2.0, better in every seed: '
            '+10.0, +8.0, +6.0') in new
    assert '18-way + DefaultSampler: 1.0 ± 1.0' in new
    assert 'MaskLabelHead + ClassBalancedSampler: 31.0 ± 1.0' in new
    assert 'is **the same in all 3 seeds**' in new
    assert 'The ranking is stable at every schedule tried.' in new

    def flip(d):                      # seed 1 swaps rows 0 and 1
        for r in d['runs']:
            if r['seed'] == 1 and r['sampler'] == 'ClassBalancedSampler' \
                    and r['head'].startswith('18-way'):
                r['metrics']['joint_f1'] = -5.0
    edit(tree, report.MASK_CLS_SCHEDULES[0], flip)
    new = report.render(str(tree), str(tree))['README.md'][1]
    epochs = [json.loads((tree / rel).read_text())['setup']['epochs']
              for rel in report.MASK_CLS_SCHEDULES[1:]]
    assert ('The ranking is stable across seeds only at '
            f'{epochs[0]}, {epochs[1]} epochs.') in new


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
