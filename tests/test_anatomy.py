"""Ticket anatomy (issue 16): mask criteria, resets, frozen zeros, supermasks, pruning at initialization."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lthkit.core.masks import (density, full_masks, keep_top, layer_densities, magnitude_masks, prunable_weights,
                               random_masks_like, score_masks, surviving_counts)
from lthkit.core.models import build_model
from lthkit.core.train import TrainConfig, train
from lthkit.errors import LthkitError
from lthkit.imp.branches import BRANCHES
from lthkit.imp.branches.anatomy import ticket_survivors
from lthkit.imp.config import LotteryConfig
from lthkit.imp.driver import run_lotteries, run_lottery
from lthkit.imp.resets import (effective_weights, freeze_pruned_at_init, layer_constant, shuffle_survivors,
                               sign_constant_reinit, supermask_accuracy)
from lthkit.imp.scorers import (SCORERS, Scorer, criterion_masks, criterion_scores, grasp_scores, hessian_gradient,
                                prune_at_init, snip_scores, synflow_scores)
from lthkit.runs.cache import cache_key
from lthkit.runs.presets import preset

LOTTERY = LotteryConfig(rounds=2, prune_rate=0.5, train=TrainConfig(iterations=40, eval_every=20, batch_size=32))


def tiny_net(seed=0, bias=True):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3, bias=bias), nn.ReLU(), nn.Linear(3, 2, bias=bias))


# --- criteria ------------------------------------------------------------------------------------

W_INIT = torch.tensor([0.5, -1.0, 0.2, -0.3, 0.0])
W_FINAL = torch.tensor([-0.8, -0.9, 0.1, 0.6, 0.4])


@pytest.mark.parametrize("name,expected", [
    ("large_final", [0.8, 0.9, 0.1, 0.6, 0.4]),
    ("large_init", [0.5, 1.0, 0.2, 0.3, 0.0]),
    ("magnitude_increase", [0.3, -0.1, -0.1, 0.3, 0.4]),
    ("movement", [1.3, 0.1, 0.1, 0.9, 0.4]),
    ("large_final_same_sign", [0.0, 0.9, 0.1, 0.0, 0.0]),  # sign flipped (or w_i = 0): 0
])
def test_each_criterion_against_a_hand_computation(name, expected):
    assert criterion_scores(name, W_INIT, W_FINAL).tolist() == pytest.approx(expected, abs=1e-6)


def test_random_criterion_is_seeded_noise():
    a = criterion_scores("random", W_INIT, W_FINAL, torch.Generator().manual_seed(3))
    b = criterion_scores("random", W_INIT, W_FINAL, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == W_FINAL.shape and ((a >= 0) & (a < 1)).all()


def test_one_scorer_registry_serves_imp_and_pruning_at_init_and_takes_a_new_one_in_one_place():
    assert SCORERS.criteria() == ("large_final", "large_init", "magnitude_increase", "movement",
                                  "large_final_same_sign", "random")
    assert SCORERS.at_init() == ("snip", "grasp", "synflow", "magnitude", "random")
    small = Scorer("small_final", "small final", lambda inputs: {k: -w.abs() for k, w in inputs.final.items()},
                   "the smallest trained weights", criterion=True, at_init=False, needs=frozenset({"final"}))
    with SCORERS.temporarily(small):
        masks = criterion_masks("small_final", {"a": W_INIT}, {"a": W_FINAL}, {"a": torch.ones(5, dtype=bool)}, 0.4)
        assert masks["a"].tolist() == [False, False, True, True, True]  # the two largest |w_f| go
        assert LOTTERY.replace(criterion="small_final").criterion == "small_final"  # the config reads the registry
        from lthkit.cli import build_parser
        from lthkit.cli.common import config_from_args

        args = build_parser().parse_args(["run", "--criterion", "small_final", "--out", "x"])
        assert config_from_args(args).criterion == "small_final"  # so does the CLI's --criterion
    assert "small_final" not in SCORERS
    with pytest.raises(LthkitError, match="unknown mask criterion 'small_final'"):
        LOTTERY.replace(criterion="small_final")
    with pytest.raises(LthkitError, match="unknown scorer 'nope'"):
        criterion_scores("nope", W_INIT, W_FINAL)
    with pytest.raises(LthkitError, match="not a mask criterion of IMP"):
        criterion_scores("snip", W_INIT, W_FINAL)
    with pytest.raises(LthkitError, match="registered already"):
        with SCORERS.temporarily(Scorer("movement", "again", lambda inputs: {}, "again")):
            pass


def test_a_new_pruning_at_init_scorer_is_one_entry_and_trains_through_its_branches(tiny_data):
    """A scorer with at_init=True gets its pai_<name>, _shuffled and _reinit branches, which the driver trains."""
    smallest = Scorer("smallest_at_init", "smallest", lambda inputs: {k: -w.abs() for k, w in inputs.start.items()},
                      "the smallest initial weights (a bad idea)", at_init=True)
    model = build_model("lenet300_100", seed=0)
    with SCORERS.temporarily(smallest):
        assert "smallest_at_init" in SCORERS.at_init()
        masks = prune_at_init("smallest_at_init", model, keep=1000)
        kept = torch.cat([w.detach()[masks[k]].abs() for k, w in prunable_weights(model).items()])
        assert kept.numel() == 1000 and float(kept.max()) < 0.01
        configs = [LOTTERY.replace(control=f"pai_smallest_at_init{suffix}") for suffix in ("", "_shuffled", "_reinit")]
        results = run_lotteries(configs, tiny_data, progress=False)
        assert [len(result.rounds) for result in results] == [LOTTERY.rounds + 1] * 3
    with pytest.raises(LthkitError, match="unknown control 'pai_smallest_at_init'"):
        LOTTERY.replace(control="pai_smallest_at_init")


def test_criterion_masks_hand_computed_and_large_final_is_magnitude_pruning():
    full = {"a": torch.ones(5, dtype=torch.bool)}
    # magnitude_increase keeps the 3 largest of [0.3, -0.1, -0.1, 0.3, 0.4] (signed, not |.|).
    kept = criterion_masks("magnitude_increase", {"a": W_INIT}, {"a": W_FINAL}, full, 0.4)["a"]
    assert kept.tolist() == [True, False, False, True, True]
    weights = {name: torch.randn(30, 20, generator=torch.Generator().manual_seed(i)) for i, name in enumerate("xyz")}
    masks = {name: torch.ones(30, 20, dtype=torch.bool) for name in weights}
    for scope in ("global", "layer"):
        expected = magnitude_masks(weights, masks, 0.3, scope=scope, layer_rates={"z": 0.1})
        through = criterion_masks("large_final", weights, weights, masks, 0.3, scope=scope, layer_rates={"z": 0.1})
        by_score = score_masks({k: v.abs() for k, v in weights.items()}, masks, 0.3, scope=scope,
                               layer_rates={"z": 0.1})
        assert all(torch.equal(expected[k], through[k]) and torch.equal(expected[k], by_score[k]) for k in weights)
        # every criterion keeps magnitude pruning's counts
        for name in SCORERS.criteria():
            other = criterion_masks(name, {k: -v for k, v in weights.items()}, weights, masks, 0.3, scope=scope,
                                    layer_rates={"z": 0.1})
            assert surviving_counts(other)["z"] == surviving_counts(expected)["z"]
            assert sum(surviving_counts(other).values()) == sum(surviving_counts(expected).values())


def test_criterion_never_revives_a_pruned_weight():
    masks = {"a": torch.tensor([False, True, True, True, True])}
    kept = criterion_masks("large_init", {"a": W_INIT}, {"a": W_FINAL}, masks, 0.5)["a"]
    assert not kept[0] and int(kept.sum()) == 2


def test_the_criterion_field_keeps_every_existing_cache_key():
    base = preset("fast").replace(data={"inputs": "standardized"})
    assert base.key() == "8c599780f58a0f770ea0af90eee8383cc86095dd1eaac246f172d595bc07e48e"
    assert cache_key(base, code="0.1.0+d1d491984521") == "7e9f4fa85d9f56da41489a9a"
    changed = base.replace(criterion="movement")
    assert changed.key() != base.key() and "criterion" not in base.to_dict()
    assert LotteryConfig.from_dict(changed.to_dict()) == changed and LotteryConfig.from_dict(base.to_dict()) == base
    with pytest.raises(LthkitError, match="^unknown mask criterion 'nope'; choose one of large_final"):
        LotteryConfig(criterion="nope")


@pytest.mark.parametrize("rounds,rate", [(1, 0.7), (2, 0.5)])  # one-shot and iterative
def test_imp_ranks_by_the_criterion(tiny_data, rounds, rate):
    config = LOTTERY.replace(rounds=rounds, prune_rate=rate, criterion="large_init")
    result = run_lottery(config, tiny_data, progress=False)
    theta0 = build_model("lenet300_100", seed=0).state_dict()
    previous = full_masks(build_model("lenet300_100", seed=0))
    for mask in result.masks[1:]:  # large_init on θ₀ (rewind init): magnitude pruning of θ₀, round by round
        expected = magnitude_masks({k: theta0[k] for k in previous}, previous, rate, scope=config.scope,
                                   layer_rates=dict(config.layer_rates))
        assert all(torch.equal(mask[k], expected[k]) for k in expected)
        previous = expected
    plain = run_lottery(config.replace(criterion="large_final"), tiny_data, progress=False)
    assert plain.densities == result.densities


# --- resets, zeros, supermasks ---------------------------------------------------------------------

def _ticket_setup(seed=0):
    model = build_model("lenet300_100", seed=seed)
    theta0 = copy.deepcopy(model.state_dict())
    masks = magnitude_masks({k: v for k, v in theta0.items() if k.endswith("weight")},
                            full_masks(model), 0.7, scope="layer")
    return model, theta0, masks


def test_sign_reinit_keeps_every_sign_and_sets_the_layer_constant():
    model, theta0, masks = _ticket_setup()
    trained = {k: v * 10 for k, v in theta0.items()}  # a model at other (trained) weights
    model.load_state_dict(trained)
    assert sign_constant_reinit(model, theta0, masks) is model
    for name, weight in prunable_weights(model).items():
        mask = masks[name]
        assert torch.equal(weight[mask].sign(), theta0[name][mask].sign())
        assert torch.allclose(weight[mask].abs(), torch.full_like(weight[mask], theta0[name].std().item()))
        assert layer_constant(theta0[name]) == pytest.approx(theta0[name].std().item())
        assert (weight[~mask] == 0).all()
    assert torch.equal(model.fc1.bias, theta0["fc1.bias"])


def test_shuffles_keep_per_layer_counts_and_values():
    model, theta0, masks = _ticket_setup()
    shuffled = random_masks_like(masks, torch.Generator().manual_seed(1))
    assert surviving_counts(shuffled) == surviving_counts(masks)
    assert layer_densities(shuffled) == layer_densities(masks)
    assert any(not torch.equal(shuffled[k], masks[k]) for k in masks)
    shuffle_survivors(model, theta0, masks, torch.Generator().manual_seed(2))
    for name, weight in prunable_weights(model).items():
        mask = masks[name]
        assert torch.equal(weight[mask].sort().values, theta0[name][mask].sort().values)
        assert not torch.equal(weight[mask], theta0[name][mask]) and (weight[~mask] == 0).all()


def test_frozen_pruned_weights_keep_theta0_through_training(tiny_data):
    model, theta0, masks = _ticket_setup()
    freeze_pruned_at_init(model, theta0, masks)
    assert list(model.state_dict()) == list(theta0)  # same keys: the offset is not saved
    train(model, tiny_data, TrainConfig(iterations=30, eval_every=10, batch_size=32), masks=masks, progress=False)
    for name, weight in effective_weights(model).items():
        mask = masks[name]
        assert torch.equal(weight[~mask], theta0[name][~mask])  # frozen at θ₀
        assert not torch.equal(weight[mask], theta0[name][mask])  # survivors trained
        assert (prunable_weights(model)[name][~mask] == 0).all()


def test_supermask_accuracy_trains_nothing(tiny_data, monkeypatch):
    model, theta0, masks = _ticket_setup()

    def no_step(*args, **kwargs):
        raise AssertionError("an optimizer stepped")

    for optimizer in (torch.optim.Adam, torch.optim.SGD, torch.optim.Optimizer):
        monkeypatch.setattr(optimizer, "step", no_step)
    before = copy.deepcopy(model.state_dict())
    accuracy = supermask_accuracy(model, masks, tiny_data.test_x, tiny_data.test_y)
    assert 0 <= accuracy <= 1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    masked = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in masked.named_parameters():
            if name in masks:
                p.mul_(masks[name])
        expected = (masked(tiny_data.test_x).argmax(1) == tiny_data.test_y).double().mean().item()
    assert accuracy == pytest.approx(expected)


@pytest.mark.parametrize("control", ["sign_constant", "shuffled_init", "frozen_pruned"])
def test_reset_branches_train_the_tickets_mask(tiny_data, control):
    ticket, run = run_lotteries([LOTTERY, LOTTERY.replace(control=control)], tiny_data, progress=False)
    assert run.densities == ticket.densities
    for a, b in zip(run.masks, ticket.masks):
        assert all(torch.equal(a[k], b[k]) for k in b)
    assert BRANCHES[control].needs == ("ticket",)


# --- pruning at initialization ---------------------------------------------------------------------

def test_snip_scores_match_autograd_by_hand():
    net = tiny_net()
    x, y = torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 0, 1, 1, 0])
    scores = snip_scores(net, x, y)
    assert list(scores) == ["0.weight", "2.weight"]  # no biases
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    for name, param in net.named_parameters():
        if name in scores:
            assert torch.allclose(scores[name], (param.grad * param).abs())


def test_grasp_hessian_gradient_product_matches_hvp():
    net = tiny_net(bias=False)
    x, y = torch.randn(5, 4, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 1, 0, 1])
    g, hg = hessian_gradient(net, x, y, temperature=2.0)
    names = list(g)
    params = [dict(net.named_parameters())[n] for n in names]

    def loss(*weights):
        return F.cross_entropy(torch.func.functional_call(net, dict(zip(names, weights)), (x,)) / 2.0, y)

    _, expected = torch.autograd.functional.hvp(loss, tuple(p.detach() for p in params), tuple(g[n] for n in names))
    for name, value in zip(names, expected):
        assert torch.allclose(hg[name], value, atol=1e-6)
    scores = grasp_scores(net, x, y, temperature=2.0)
    for name, param in zip(names, params):
        assert torch.allclose(scores[name], -param.detach() * hg[name])


def test_synflow_scores_are_conserved_per_layer_in_a_linear_network():
    net = nn.Sequential(nn.Linear(5, 4, bias=False), nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=False))
    scores = synflow_scores(net, input_shape=(5,))
    sums = [float(s.sum()) for s in scores.values()]
    assert sums == pytest.approx([sums[0]] * 3, rel=1e-5)
    # and for LeNet (zero biases at init, ReLUs see only positive inputs)
    lenet = synflow_scores(build_model("lenet300_100", seed=0))
    sums = [float(s.sum()) for s in lenet.values()]
    assert sums == pytest.approx([sums[0]] * 3, rel=1e-4)


def test_synflow_needs_no_data(monkeypatch):
    model = build_model("lenet300_100", seed=0)
    masks = prune_at_init("synflow", model, keep=20_000, rounds=5)
    assert sum(surviving_counts(masks).values()) == 20_000
    assert all((weight != 0).all() for weight in prunable_weights(model).values())  # the model is not changed
    again = prune_at_init("synflow", model, keep=20_000, rounds=5, inputs=None, targets=None)  # no batch at all
    assert all(torch.equal(again[name], masks[name]) for name in masks), "the same mask every time"


@pytest.mark.parametrize("method", SCORERS.at_init())
def test_each_method_keeps_exactly_the_target_count(method):
    model = build_model("lenet300_100", seed=0)
    before = copy.deepcopy(model.state_dict())
    x, y = torch.randn(16, 1, 28, 28), torch.arange(16) % 10
    masks = prune_at_init(method, model, keep=12_345, inputs=x, targets=y, rounds=4)
    assert sum(surviving_counts(masks).values()) == 12_345
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_pai_methods_keep_the_top_of_their_scores():
    net = tiny_net()
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 0, 1, 1, 0])
    snip = prune_at_init("snip", net, keep=5, inputs=x, targets=y)
    assert all(torch.equal(snip[k], keep_top(snip_scores(net, x, y), 5)[k]) for k in snip)
    grasp = prune_at_init("grasp", net, keep=5, inputs=x, targets=y)
    scores = grasp_scores(net, x, y)
    threshold = max(float(scores[k][grasp[k]].max()) for k in grasp)  # keeps the lowest GraSP scores
    assert all(float(scores[k][~grasp[k]].min()) >= threshold for k in grasp)
    magnitude = prune_at_init("magnitude", net, keep=5)
    assert sorted(torch.cat([w[magnitude[k]].abs() for k, w in prunable_weights(net).items()]).tolist()) == \
        sorted(torch.cat([w.abs().reshape(-1) for w in prunable_weights(net).values()]).tolist())[-5:]
    with pytest.raises(LthkitError, match="snip needs a batch"):
        prune_at_init("snip", net, keep=5)


def test_ticket_survivors_are_the_tickets_counts(tiny_data):
    ticket = run_lottery(LOTTERY, tiny_data, progress=False)
    model = build_model("lenet300_100", seed=0)
    assert [ticket_survivors(LOTTERY, r, model) for r in range(3)] == \
        [sum(surviving_counts(m).values()) for m in ticket.masks]


def test_pai_branches_and_sanity_checks_run_through_the_driver(tiny_data):
    configs = [LOTTERY.replace(control=c) for c in ("ticket", "pai_snip", "pai_snip_shuffled", "pai_snip_reinit",
                                                    "pai_synflow")]
    ticket, snip, shuffled, reinit, synflow = run_lotteries(configs, tiny_data, progress=False)
    assert snip.densities == ticket.densities == shuffled.densities == synflow.densities
    for r in (1, 2):
        assert layer_densities(shuffled.masks[r]) == layer_densities(snip.masks[r])
        assert all(torch.equal(reinit.masks[r][k], snip.masks[r][k]) for k in snip.masks[r])
        assert layer_densities(snip.masks[r]) != layer_densities(ticket.masks[r])  # global, not the ticket's
    assert density(snip.masks[0]) == 1.0


# --- the study and its command line ------------------------------------------------------------------

TINY_FLAGS = ["--preset", "fast", "--rounds", "1", "--validation-size", "200", "--train-size", "600", "--test-size",
              "100", "--iterations", "20", "--eval-every", "10", "--batch-size", "32", "--no-progress",
              "--workers", "1"]


def test_anatomy_command_writes_csvs_and_figures_and_resumes(mnist_root, tmp_path, capsys):
    from lthkit.cli import main
    from lthkit.studies.anatomy import read_study_csv

    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["anatomy", *TINY_FLAGS, "--experiments", "criteria,zeros", "--data", str(mnist_root),
            "--cache", str(cache), "--out", str(out)]
    assert main(argv) == 0
    rows = read_study_csv(out / "summary.csv")
    assert {row["experiment"] for row in rows} == {"criteria", "zeros"}
    assert len(rows) == (6 + 2) * 2  # 6 criteria + 2 zeros series, 2 rounds each, 1 trial
    supermask = read_study_csv(out / "supermask.csv")
    assert len(supermask) == 6 * 2 * 2 and {row["weights"] for row in supermask} == {"theta0", "sign_constant"}
    for name in ("criteria.png", "zeros.png", "supermask.png", "run_info.json", "tables.md"):
        assert (out / name).is_file()
    assert not (out / "pruning_at_init.png").exists()
    entries = sorted(path.name for path in cache.iterdir())
    assert main(argv) == 0  # from the cache: nothing new trained
    assert sorted(path.name for path in cache.iterdir()) == entries
    assert read_study_csv(out / "summary.csv") == rows


def test_prune_at_init_command_runs_the_three_pai_experiments(mnist_root, tmp_path):
    from lthkit.cli import main
    from lthkit.studies.anatomy import read_study_csv

    out = tmp_path / "out"
    assert main(["prune-at-init", *TINY_FLAGS, "--data", str(mnist_root), "--cache", str(tmp_path / "cache"),
                 "--out", str(out)]) == 0
    rows = read_study_csv(out / "summary.csv")
    assert {row["experiment"] for row in rows} == {"pai", "pai_shuffled", "pai_reinit"}
    assert {row["series"] for row in rows} == {"IMP ticket", "SNIP", "GraSP", "SynFlow", "magnitude at init",
                                               "random at init"}
    assert (out / "pruning_at_init.png").is_file() and not (out / "criteria.png").exists()


@pytest.mark.parametrize("argv,message", [
    (["--experiments", "nope"], "unknown experiment 'nope'"),
    (["--preset", "paper"], "invalid choice: 'paper'"),
    (["--criterion", "biggest"], "invalid choice: 'biggest'"),
])
def test_anatomy_bad_arguments_one_line_exit_2(argv, message, tmp_path, capsys):
    from lthkit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["anatomy", "--out", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_anatomy_bad_folder_is_one_line_and_changes_nothing(tmp_path, capsys):
    from lthkit.cli import main

    (tmp_path / "out").write_text("a file")
    status = main(["anatomy", "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--workers", "1"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("lthkit anatomy: error: --out") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (tmp_path / "out").read_text() == "a file"


# --- notebook 7: the explorer and the exercises ---------------------------------------------------------

def test_explorer_trains_only_on_run(tiny_data, tmp_path):
    from lthkit.course.anatomy_explorer import AnatomyExplorer, explorer_config

    explorer = AnatomyExplorer(LOTTERY, cache_dir=tmp_path / "cache", data=tiny_data, progress=False)
    assert explorer.image.layout.display == "none", "no broken image before the first Run"
    explorer.controls["criterion"].value = "movement"
    explorer.controls["reset"].value = "shuffled_init"
    explorer.controls["density"].value = 0.2
    assert explorer.trained == 0 and not (tmp_path / "cache").exists()
    assert "not trained yet" in explorer.status.value
    explorer.run_button.click()
    assert explorer.trained == 1, explorer.status.value
    (label,) = explorer.plotted()
    densities, accuracies = explorer.plotted()[label]
    assert len(densities) == LOTTERY.rounds + 1 and densities[-1] == pytest.approx(0.2, abs=0.05)
    assert explorer.image.value[:8] == b"\x89PNG\r\n\x1a\n" and explorer.image.layout.display == ""
    (bar,) = explorer.progress.children  # progress shown while it trained, complete at the end
    assert bar.children[1].bar_style == "success" and bar.children[1].value == bar.children[1].max == 6  # with its ticket
    assert "weights remaining" in bar.children[0].value.replace("\u2007", " ")
    config = explorer.config()
    assert (config.criterion, config.control) == ("movement", "shuffled_init")
    explorer.controls["density"].value = 0.1
    explorer.controls["density"].value = 0.2
    assert "in the cache" in explorer.status.value
    explorer.run_button.click()
    assert "from the cache" in explorer.status.value
    assert explorer.progress.children[0].children[0].value.replace("\u2007", " ").strip() == "from cache"
    with pytest.raises(LthkitError, match="density must be a number in"):
        explorer_config(LOTTERY, criterion="movement", reset="ticket", density=1.5)
    with pytest.raises(LthkitError, match="unknown reset"):
        explorer_config(LOTTERY, criterion="movement", reset="flip", density=0.5)


def test_the_explorer_starts_on_the_notebooks_own_runs():
    """Issue 27: the explorer's first choices are the notebook's study's configs: the same cache keys, nothing retrained."""
    from lthkit.course.anatomy_explorer import RESET_CHOICES, AnatomyExplorer
    from lthkit.studies.anatomy import study_configs

    explorer = AnatomyExplorer(LOTTERY)
    studied = {cache_key(config) for config in study_configs(LOTTERY, trials=1)}
    assert explorer.controls["density"].value is None and cache_key(explorer.config()) in studied
    for _, reset in RESET_CHOICES:  # every reset of the study, at the notebook's schedule
        explorer.controls["reset"].value = reset
        assert cache_key(explorer.config()) in studied, reset
    explorer.controls["reset"].value = "ticket"
    for criterion in SCORERS.criteria():
        explorer.controls["criterion"].value = criterion
        assert cache_key(explorer.config()) in studied, criterion


def test_notebook_7_exercises_keep_their_contract_signatures():
    import ast
    from pathlib import Path

    import nbformat

    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    for path, solved in ((notebooks / "07_ticket_anatomy.ipynb", True),
                         (notebooks / "exercises" / "07_ticket_anatomy.ipynb", False)):
        functions = {node.name: node for cell in nbformat.read(path, as_version=4).cells
                     if cell.cell_type == "code" for node in ast.parse(cell.source).body
                     if isinstance(node, ast.FunctionDef)}
        for name, args in (("snip_scores", ["model", "inputs", "targets"]),
                           ("sign_constant_reinit", ["model", "initial_state_dict", "masks"])):
            assert [a.arg for a in functions[name].args.args] == args
            assert ("raise NotImplementedError" in ast.unparse(functions[name])) is not solved


def test_the_new_core_modules_are_part_of_the_cache_key():
    from lthkit.runs.cache import computing_modules

    names = {path.name for path in computing_modules()}
    assert {"scorers.py", "resets.py", "anatomy.py"} <= names  # anatomy.py: imp/branches/anatomy.py
    assert not any(path.parts[-2] in ("studies", "course") for path in computing_modules())


# --- the report ------------------------------------------------------------------------------------

def synthetic_study(offsets, supermask_best="large_final_same_sign", trials=3, rounds=3):
    """Rows of a study whose series sit ``offsets[(experiment, series)]`` points from 97% in every pruned round."""
    from lthkit.studies.anatomy import EXPERIMENTS, SUPERMASK_WEIGHTS

    base = preset("fast")
    rows, supermask = [], []
    for experiment, series_of in EXPERIMENTS.items():
        for label, _ in series_of(base):
            for trial in range(trials):
                for round_index in range(rounds + 1):
                    accuracy = 0.97 + (0 if round_index == 0 else offsets.get((experiment, label), 0.0) / 100)
                    accuracy += 0.001 * trial  # trials differ; paired differences do not
                    rows.append({"experiment": experiment, "series": label, "control": "ticket", "criterion": "x",
                                 "trial": trial, "round": round_index, "density": 0.5 ** round_index,
                                 "early_stop_iter": 100, "test_acc_early_stop": accuracy, "test_acc_final": accuracy})
    for name in SCORERS.criteria():
        for weights in SUPERMASK_WEIGHTS:
            for trial in range(trials):
                for round_index in range(rounds + 1):
                    accuracy = 0.1 if round_index == 0 else (0.6 if name == supermask_best else 0.3)
                    supermask.append({"criterion": name, "weights": weights, "trial": trial, "round": round_index,
                                      "density": 0.5 ** round_index, "test_acc": accuracy})
    return rows, supermask


PAPER_LIKE = {("criteria", "large_final"): 0.5, ("criteria", "magnitude_increase"): 0.4,
              ("criteria", "random"): -3.0, ("resets", "signs of θ₀ × layer constant"): -0.1,
              ("resets", "θ₀ shuffled in each layer"): -1.5, ("resets", "random re-init"): -1.0,
              ("zeros", "pruned weights frozen at θ₀"): -2.0,
              **{("pai", label): -1.0 for label in ("SNIP", "GraSP", "SynFlow", "magnitude at init")},
              ("pai", "random at init"): -2.0,
              ("pai_shuffled", "IMP ticket"): -1.0, ("pai_reinit", "IMP ticket"): -1.0,
              **{(check, label): -1.0 for check in ("pai_shuffled", "pai_reinit")
                 for label in ("SNIP", "GraSP", "SynFlow", "magnitude at init")},
              **{(check, "random at init"): -2.0 for check in ("pai_shuffled", "pai_reinit")}}


def test_paired_difference_against_a_hand_computation():
    from lthkit.studies.anatomy import paired_difference

    rows = [{"experiment": "e", "series": s, "trial": t, "round": r, "test_acc_early_stop": a}
            for s, t, r, a in [("a", 0, 0, 0.9), ("b", 0, 0, 0.5), ("a", 0, 1, 0.8), ("b", 0, 1, 0.7),
                               ("a", 1, 1, 0.6), ("b", 1, 1, 0.7), ("a", 0, 2, 0.5), ("b", 0, 2, 0.2),
                               ("a", 1, 2, 0.4), ("b", 1, 2, 0.3)]]
    difference = paired_difference(rows, "e", "a", "b")
    # round 1: (0.1 - 0.1) / 2 = 0; round 2: (0.3 + 0.1) / 2 = 0.2; round 0 (dense) never counts
    assert difference["mean"] == pytest.approx(0.1) and difference["sparsest"] == pytest.approx(0.2)
    assert (difference["sparsest_min"], difference["sparsest_max"]) == pytest.approx((0.1, 0.3))
    assert (difference["rounds"], difference["trials"], difference["sparsest_round"]) == (2, 2, 2)
    assert paired_difference(rows, "e", "a", "missing") is None


def test_claims_are_consistent_when_the_data_agrees_with_the_papers_and_not_when_it_does_not():
    from lthkit.studies.anatomy import anatomy_claims

    agreeing = {item.claim.id: item.verdict for item in anatomy_claims(*synthetic_study(PAPER_LIKE))}
    assert len(agreeing) == 27
    assert {claim for claim, verdict in agreeing.items() if verdict != "consistent"} == {"supermask_near_86"}, agreeing
    # The opposite world: re-init helps, frozen beats zero, PaI beats IMP, shuffling helps IMP.
    opposite = {**PAPER_LIKE, ("resets", "random re-init"): 1.0, ("zeros", "pruned weights frozen at θ₀"): 1.0,
                **{("pai", label): 1.0 for label in ("SNIP", "GraSP", "SynFlow", "magnitude at init")},
                ("pai_shuffled", "IMP ticket"): 1.0}
    verdicts = {item.claim.id: item.verdict for item in anatomy_claims(*synthetic_study(opposite))}
    assert verdicts["reinit_worse"] == verdicts["frozen_worse"] == "inconsistent"
    assert verdicts["snip_below_imp"] == verdicts["pai_shuffled_hurts_imp"] == "inconsistent"
    # the PaI masks lose 2 points when shuffled: "does not hurt" is inconsistent too
    assert verdicts["pai_shuffled_snip_unhurt"] == "inconsistent"


def test_an_anatomy_difference_under_the_placebo_is_no_finding():
    """When shuffling a random mask (a placebo) moves accuracy by a point, a 0.5-point effect is not a finding."""
    from lthkit.studies.anatomy import anatomy_claims

    noisy = {**PAPER_LIKE, ("criteria", "large_final"): 0.5, ("criteria", "random"): 0.0,
             ("pai_shuffled", "random at init"): -1.0}
    judged = {item.claim.id: item for item in anatomy_claims(*synthetic_study(noisy))}
    assert judged["large_final_beats_random"].noise_floor == pytest.approx(1.0)
    assert judged["large_final_beats_random"].verdict == "inconclusive"
    assert judged["placebo_shuffled_random"].verdict == "inconsistent"


def test_report_command_rewrites_each_kind_of_folder(tmp_path, capsys):
    from lthkit.cli import main
    from lthkit.core.files import csv_text
    from lthkit.studies.anatomy import SUMMARY_COLUMNS, SUPERMASK_COLUMNS

    rows, supermask = synthetic_study(PAPER_LIKE)
    folder = tmp_path / "anatomy"
    folder.mkdir()
    (folder / "summary.csv").write_text(csv_text(rows, SUMMARY_COLUMNS))
    (folder / "supermask.csv").write_text(csv_text(supermask, SUPERMASK_COLUMNS))
    (folder / "run_info.json").write_text('{"command": ["python", "-m", "lthkit", "anatomy"], "trials": 3}')
    assert main(["report", str(folder)]) == 0
    text = (folder / "README.md").read_text()
    assert "Zhou et al. 2019, §3" in text and "Frankle et al. 2021, §5" in text and "(of 27 claims)" in text
    assert text.count("| **consistent** |") == 26 and (folder / "claims.csv").is_file()
    assert "python -m lthkit anatomy" in text and "### criteria:" in text
    for bad, message in ((tmp_path / "nothing", "does not exist"), (tmp_path, "holds no study's rows")):
        assert main(["report", str(bad)]) == 2
        assert message in capsys.readouterr().err
    (folder / "run_info.json").write_text("{broken")
    before = (folder / "README.md").read_text()
    assert main(["report", str(folder)]) == 2
    assert "run_info.json" in capsys.readouterr().err and (folder / "README.md").read_text() == before
