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


def test_the_explorer_draws_the_notebooks_pairs_without_training(tiny_data, tmp_path, monkeypatch):
    """Issue 27: notebook 6's explorer reuses the pairs its live study trained (the study's own configs and
    cache keys), ends with a complete bar that says so, and shows no broken image before the first Run."""
    from lthkit.studies.stability import run_stability, stability_pairs

    base = BASE.replace(rounds=2)  # the study's runs have all their rounds: the explorer's must be the same
    run_stability(base, (0, 20), controls=("ticket", "random_prune"), cache_dir=tmp_path, data=tiny_data,
                  progress=False)
    trained = []
    real = experiments.run_lotteries
    monkeypatch.setattr(experiments, "run_lotteries", lambda configs, *a, **k: trained.append(list(configs))
                        or real(configs, *a, **k))
    explorer = StabilityExplorer(base, ks=(0, 20), cache_dir=tmp_path, data=tiny_data)
    assert explorer.image.layout.display == "none" and not explorer.progress.children
    studied = {(p.source, p.twin) for p in stability_pairs(base, (0, 20), 1, ("ticket", "random_prune"))}
    for k in (0, 20):
        for round_index in (0, 1, 2):
            for control in ("ticket", "random_prune"):
                explorer.controls["k"].value, explorer.controls["round"].value = k, round_index
                explorer.controls["control"].value = control
                pair = explorer.pair()
                assert (pair.source, pair.twin) in studied
                assert "in the cache" in explorer.status.value
    explorer.run_button.click()
    assert trained == [] and "from the cache" in explorer.status.value, explorer.status.value
    (bar,) = explorer.progress.children
    assert bar.children[1].bar_style == "success" and bar.children[1].value == bar.children[1].max
    assert bar.children[0].value.replace("\u2007", " ").strip() == "from cache"
    assert explorer.image.layout.display == "" and explorer.image.value[:4] == b"\x89PNG"


def test_a_run_that_trains_ends_with_a_complete_bar(tiny_data, tmp_path):
    """Issue 27: after a successful run the bar is complete and green, never left at 67% (the twin shares round 0)."""
    explorer = StabilityExplorer(BASE.replace(rounds=2), ks=(0, 20), cache_dir=tmp_path, data=tiny_data)
    explorer.controls["k"].value, explorer.controls["round"].value = 20, 2
    explorer.run_button.click()
    assert explorer.errors.outputs == (), explorer.errors.outputs
    (bar,) = explorer.progress.children
    assert bar.children[1].bar_style == "success" and bar.children[1].value == bar.children[1].max
    assert "weights remaining" in bar.children[0].value.replace("\u2007", " ")
