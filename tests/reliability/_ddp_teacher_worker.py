"""One rank of tests/reliability/test_ddp.py's teacher check (launched with
``python -m torch.distributed.run --nproc_per_node 2``): trains a UDA config
with the stock Runner and writes hashes of the teacher and student."""
import hashlib
import json
import os
import sys

import torch


def state_hash(module, buffers=False):
    """sha256 of the parameters (or of the buffers: BN running stats)."""
    h = hashlib.sha256()
    items = module.named_buffers() if buffers else module.named_parameters()
    for k, v in sorted(items):
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
        def before_train(self, runner):
            seen['teacher_init'] = state_hash(
                runner.model.module.teacher if hasattr(
                    runner.model, 'module') else runner.model.teacher)

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            m = runner.model.module if hasattr(runner.model, 'module') \
                else runner.model
            s = m.student.module if hasattr(m.student, 'module') \
                else m.student
            hub = runner.message_hub.log_scalars.get(
                'train/nan_guard_skipped')
            seen.setdefault('history', []).append(dict(
                iter=runner.iter + 1, teacher=state_hash(m.teacher),
                student=state_hash(s), local_iter=int(m.local_iter),
                skipped=None if hub is None else int(hub.current())))

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
                       student=state_hash(student),
                       teacher_buffers=state_hash(model.teacher, True),
                       **seen), f)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
