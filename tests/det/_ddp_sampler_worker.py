"""Worker of test_diet_ddp.py: run by ``torch.distributed.run`` with 2
processes (gloo), iterates the samplers and dumps what this rank reads."""
import json
import os
import os.path as osp
import sys

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
sys.path[:0] = [ROOT, HERE]


def _import_samplers_only():
    """Import the two sampler modules without ``mmplugins/__init__``.

    ``import mmplugins`` registers every trick of every toolbox (~15 s on 2
    busy cores); two ranks doing it in parallel would dominate this test.
    The samplers need only mmengine and ``mmplugins.registry``.
    """
    import types
    pkg = types.ModuleType('mmplugins')
    pkg.__path__ = [osp.join(ROOT, 'mmplugins')]
    sys.modules.setdefault('mmplugins', pkg)


def main(out_dir):
    import torch.distributed as dist
    dist.init_process_group('gloo')
    from _diet_fixtures import (REFERENCE_FIXTURE, REFERENCE_RULES,
                                CatIdsDataset)
    from mmengine.dist import get_dist_info

    _import_samplers_only()
    from mmplugins.datasets.samplers.diet_sampler import DietSampler
    from mmplugins.datasets.samplers.epoch_parts_sampler import \
        EpochPartsSampler

    class Sized:

        def __len__(self):
            return 101

    rank, world_size = get_dist_info()
    per_image = [ids for ids, _, _ in REFERENCE_FIXTURE]
    diet = DietSampler(CatIdsDataset(per_image), REFERENCE_RULES,
                       epoch_parts=2, seed=None, verbose=False)
    parts = EpochPartsSampler(Sized(), epoch_parts=4, seed=None)
    result = dict(rank=rank, world_size=world_size, seed=parts.seed,
                  diet_seed=diet.seed, diet_len=len(diet),
                  parts_len=len(parts),
                  subset=diet.selection.indices.tolist(), diet=[], parts=[])
    for epoch in range(3):
        diet.set_epoch(epoch)
        parts.set_epoch(epoch)
        result['diet'].append(list(diet))
        result['parts'].append(list(parts))
    # ranks with different annotations must not train on different subsets
    if rank == 1:
        per_image[0] = per_image[0] + [5]          # rank 1 sees a phone
    try:
        # seed given: no seed-sync collective after the failing check
        DietSampler(CatIdsDataset(per_image), REFERENCE_RULES, seed=0,
                    verbose=False)
        result['mismatch_error'] = None
    except RuntimeError as e:
        result['mismatch_error'] = str(e)
    with open(osp.join(out_dir, f'rank{rank}.json'), 'w') as f:
        json.dump(result, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    main(sys.argv[1])
