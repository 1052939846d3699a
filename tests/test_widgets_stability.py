"""Notebook 6's StabilityExplorer: choosing never trains; Run trains the pair (progress inside) and draws its path."""

import lthkit.runs.experiments as experiments
from lthkit.core.train import TrainConfig
from lthkit.course.dashboard import StabilityExplorer
from lthkit.imp.config import LotteryConfig
from lthkit.studies.stability import pair_for

BASE = LotteryConfig(rounds=1, prune_rate=0.5, train=TrainConfig(iterations=40, eval_every=20, batch_size=32))


def test_choosing_never_trains_and_run_draws_the_pair(tiny_data, tmp_path, monkeypatch):
    trained = []
    real = experiments.run_lotteries
    monkeypatch.setattr(experiments, "run_lotteries", lambda configs, *a, **k: trained.append(list(configs))
                        or real(configs, *a, **k))
    explorer = StabilityExplorer(BASE, ks=(0, 20), cache_dir=tmp_path, data=tiny_data)
    explorer.controls["k"].value = 20
    explorer.controls["round"].value = 1
    explorer.controls["control"].value = "random_prune"
    assert trained == [] and "Run trains" in explorer.status.value
    explorer.run_button.click()
    assert explorer.errors.outputs == (), explorer.errors.outputs
    assert trained and explorer.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert {row["control"] for row in explorer.last} == {"random_prune"} and len(explorer.last) == 21
    assert explorer.last[0]["k"] == 20 and "error barrier" in explorer.status.value
    assert explorer.progress.children  # the bar lives inside the explorer
    trained.clear()
    explorer.run_button.click()  # again: from the cache
    assert trained == [] and "from the cache" in explorer.status.value
    assert explorer.pair() == pair_for(BASE, 20, 1, "random_prune")
