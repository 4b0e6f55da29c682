"""Test-only hook: records each rank's samples and model hashes."""
import hashlib
import json
import os
import os.path as osp

import torch
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def _hash(module):
    # parameters: BN running stats are per-rank under DDP with
    # broadcast_buffers=False (as in stock mmseg), unless SyncBN is used
    h = hashlib.sha256()
    for k, v in sorted(module.named_parameters()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@HOOKS.register_module()
class RecordSamplesHook(Hook):

    def __init__(self):
        self.samples = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        for ds in data_batch['data_samples']:
            self.samples.append(osp.basename(ds.img_path))

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        rank, world = get_dist_info()
        out = dict(samples=self.samples, world_size=world,
                   backend=torch.distributed.get_backend()
                   if torch.distributed.is_initialized() else None,
                   teacher_hash=_hash(model.teacher),
                   student_hash=_hash(model.student_module))
        with open(osp.join(os.environ['MMPLUGINS_RECORD_DIR'],
                           f'rank{rank}.json'), 'w') as f:
            json.dump(out, f)
