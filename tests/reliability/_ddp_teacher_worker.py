"""One rank of tests/reliability/test_ddp.py's teacher check (launched with
``python -m torch.distributed.run --nproc_per_node 2``): trains a UDA config
with the stock Runner and writes hashes of the teacher and student."""
import hashlib
import json
import os
import sys

import torch


def state_hash(module):
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main(cfg_path, out):
    torch.set_num_threads(1)
    import mmplugins  # noqa: F401
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    cfg = Config.fromfile(cfg_path)
    cfg.launcher = 'pytorch'
    cfg.work_dir = out
    runner = Runner.from_cfg(cfg)
    seen = {}

    class Probe(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if 'first_batch' not in seen:
                seen['first_batch'] = [
                    ds.img_path for ds in data_batch['data_samples']]

        def before_train(self, runner):
            seen['teacher_init'] = state_hash(
                runner.model.module.teacher if hasattr(
                    runner.model, 'module') else runner.model.teacher)

    runner.register_hook(Probe())
    runner.train()
    model = runner.model.module if hasattr(runner.model, 'module') else \
        runner.model
    student = model.student.module if hasattr(model.student, 'module') \
        else model.student
    rank = int(os.environ['RANK'])
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f'rank{rank}.json'), 'w') as f:
        json.dump(dict(iters=runner.iter, teacher=state_hash(model.teacher),
                       student=state_hash(student), **seen), f)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
