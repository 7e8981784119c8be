"""The EMA module: AveragedModel's arithmetic and state layout, the warm-up schedule."""

from __future__ import annotations

import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from mege.ema import EMA, decay_at


def test_ema_update_is_averaged_model_arithmetic_and_state_layout():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    ours = EMA(model, 0.9)
    theirs = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    for _ in range(4):
        model.train()(torch.randn(8, 3))  # moves BatchNorm running stats and its integer counter
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ours.update(model)
        theirs.update_parameters(model)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # checkpoints from before load
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), name
    # by hand for one weight: θ̄ = θ_0, then θ̄ ← 0.9 θ̄ + 0.1 θ
    lin = torch.nn.Linear(1, 1, bias=False)
    ema = EMA(lin, 0.9)
    for w in [2.0, 4.0, 6.0]:
        lin.weight.data.fill_(w)
        ema.update(lin)
    assert ema.module.weight.item() == pytest.approx((2.0 * 0.9 + 0.4) * 0.9 + 0.6)


def test_loaded_state_continues_the_average():
    lin = torch.nn.Linear(1, 1, bias=False)
    ema = EMA(lin, 0.5)
    lin.weight.data.fill_(2.0)
    ema.update(lin)
    restored = EMA(torch.nn.Linear(1, 1, bias=False), 0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.updates == 1  # the next update averages, it does not copy
    lin.weight.data.fill_(4.0)
    restored.update(lin)
    assert restored.module.weight.item() == 3.0


def test_ema_warmup_follows_the_schedule_and_caps_at_decay():
    assert [decay_at(0.999, t, True) for t in (0, 1, 90)] == [0.1, 2 / 11, 0.91]
    assert decay_at(0.999, 10**6, True) == 0.999
    assert decay_at(0.999, 0, False) == 0.999
    # After 1 000 updates of a constant weight w=1 from θ_0=0 the warm-up average is much nearer to 1.
    lin = torch.nn.Linear(1, 1, bias=False)

    def average_after_1000(warmup: bool) -> float:
        ema = EMA(lin, 0.999, warmup)
        lin.weight.data.fill_(0.0)
        ema.update(lin)
        lin.weight.data.fill_(1.0)
        for _ in range(1000):
            ema.update(lin)
        return ema.module.weight.item()

    plain = average_after_1000(False)
    assert plain == pytest.approx(1 - 0.999**1000, rel=1e-5) and plain < 0.64
    assert average_after_1000(True) > 0.999


def test_ema_warmup_in_the_config_reaches_the_trainers_average(make_cfg, tmp_path):
    """ema_warmup=true from the config: the second update uses d = min(0.999, 2/11) = 2/11, so a weight
    moved from 0 to 1 averages to 9/11; without warm-up it is 1 − 0.999 = 0.001."""
    from mege.training import trainer_from_config

    def second_average(*overrides: str) -> float:
        trainer = trainer_from_config(make_cfg("ema_decay=0.999", *overrides), tmp_path / "_".join(overrides or ("off",)))
        g, ema = trainer.generator, trainer.ema
        first = next(iter(g.parameters()))
        with torch.no_grad():
            first.zero_()
            ema.update(g)
            first.fill_(1.0)
            ema.update(g)
        return float(next(iter(ema.module.parameters())).detach().flatten()[0])

    assert second_average("ema_warmup=true") == pytest.approx(9 / 11, rel=1e-6)
    assert second_average("ema_warmup=false") == pytest.approx(0.001, rel=1e-4)
