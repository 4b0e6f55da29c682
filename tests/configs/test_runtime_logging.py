"""The runtime's log processor: ``pseudo_weight`` is logged as the mean of
the last ``window_size`` iterations (one batch holds only a few target
crops), losses too, while ``lr`` stays the current value."""
import types

import pytest
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import LOG_PROCESSORS

CONFIGS = ['configs/mic_dual_aug.py', 'configs/real/daformer_samsung.py',
           'configs/source_only.py']


@pytest.mark.parametrize('config', CONFIGS)
def test_pseudo_weight_is_a_window_mean(config):
    cfg = Config.fromfile(config)
    proc = LOG_PROCESSORS.build(dict(type='LogProcessor',
                                     **cfg.log_processor))
    hub = MessageHub.get_instance(f'test_runtime_logging_{config}')
    values = [i / 20 for i in range(20)]   # 0.00, 0.05, ..., 0.95
    for i, v in enumerate(values):
        hub.update_scalar('train/pseudo_weight', v)
        hub.update_scalar('train/masked.pseudo_weight', 1 - v)
        hub.update_scalar('train/decode.loss_ce', 2 * v)
        hub.update_scalar('train/lr', 1e-3 * (i + 1))
    runner = types.SimpleNamespace(message_hub=hub)
    tag = proc._collect_scalars([], runner, 'train')
    last10 = values[10:]
    assert proc.window_size == 10
    assert tag['pseudo_weight'] == pytest.approx(sum(last10) / 10)   # 0.725
    assert tag['masked.pseudo_weight'] == pytest.approx(
        sum(1 - v for v in last10) / 10)
    assert tag['decode.loss_ce'] == pytest.approx(2 * sum(last10) / 10)
    assert tag['lr'] == pytest.approx(1e-3 * 20)   # current, not averaged
