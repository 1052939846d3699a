"""lthkit.imp.branches: the registry of what a round trains, and the one driver resolving what a branch needs."""

import pytest
import torch

import lthkit.imp.driver as lottery
from lthkit.core.models import build_model
from lthkit.core.train import TrainConfig
from lthkit.errors import LthkitError
from lthkit.imp.branches import BRANCHES, Branch, RoundInputs, RoundStart
from lthkit.imp.branches import PAPER_CONTROLS as CONTROLS
from lthkit.imp.config import LotteryConfig
from lthkit.imp.driver import run_lotteries, run_lottery, with_dependencies
from lthkit.runs.experiments import run_experiment, run_experiments, runs_to_train

LOTTERY = LotteryConfig(rounds=2, train=TrainConfig(iterations=40, eval_every=20, batch_size=32))


def flipped_signs(inputs: RoundInputs) -> RoundStart:
    """A toy control: the ticket's mask of this round, from −θ₀ (every initial sign flipped)."""
    model = inputs.model()
    model.load_state_dict({name: -value for name, value in inputs.theta0.items()})
    return RoundStart(model, inputs.needed_masks["ticket"])


#: The toy control, as one entry: everything else reads it from the registry.
FLIPPED = Branch("flipped_signs", flipped_signs, label="flipped signs", colour="#9467bd", needs=("ticket",),
                 uses_rewind_point=False, control=True)


@pytest.fixture
def toy_branch():
    """``flipped_signs`` registered for this test only."""
    with BRANCHES.temporarily(FLIPPED):
        yield "flipped_signs"
    assert "flipped_signs" not in BRANCHES


def test_the_paper_controls_are_registered_branches():
    assert set(CONTROLS) <= set(BRANCHES)
    assert BRANCHES["ticket"].needs == ()
    assert BRANCHES["reinit"].needs == ("ticket",) and BRANCHES["random_prune"].needs == ("ticket",)
    assert BRANCHES["random_prune"].requires_rewind_point and not BRANCHES["ticket"].requires_rewind_point


def test_a_control_registered_in_a_test_runs_through_the_driver(tiny_data, toy_branch, monkeypatch):
    starts = []
    real = lottery.train

    def spy(model, data, train_config, **kwargs):
        starts.append((kwargs["description"], model.fc1.weight.detach().clone()))
        return real(model, data, train_config, **kwargs)

    monkeypatch.setattr(lottery, "train", spy)
    config = LOTTERY.replace(control=toy_branch)
    (toy,) = run_lotteries([config], tiny_data, progress=False)  # its ticket runs alongside
    ticket = run_lottery(LOTTERY, tiny_data, progress=False)
    assert len(starts) == 2 * (LOTTERY.rounds + 1) + LOTTERY.rounds + 1
    assert len(toy.rounds) == LOTTERY.rounds + 1 and toy.config.control == toy_branch
    for toy_mask, ticket_mask in zip(toy.masks, ticket.masks):  # the ticket's masks, round by round
        assert all(torch.equal(toy_mask[k], ticket_mask[k]) for k in ticket_mask)
    theta0 = build_model("lenet300_100", seed=0).fc1.weight
    toy_starts = starts[1:2 * (LOTTERY.rounds + 1):2]  # ticket, toy in each round (train() applies the mask)
    assert [description for description, _ in toy_starts] == [f"round {r} ({d:.1%} left)"
                                                             for r, d in enumerate(ticket.densities)]
    assert all(torch.equal(weights, -theta0) for _, weights in toy_starts)
    assert run_lottery(config, tiny_data, ticket=ticket, progress=False).densities == ticket.densities


def test_a_registered_control_is_cached_and_needs_its_ticket_once(tiny_data, toy_branch, tmp_path):
    config = LOTTERY.replace(control=toy_branch)
    assert runs_to_train([config], cache_dir=tmp_path) == [LOTTERY, config]
    first = run_experiment(config, cache_dir=tmp_path, data=tiny_data, progress=False)
    assert runs_to_train([config, LOTTERY], cache_dir=tmp_path) == []
    (again,) = run_experiments([config], cache_dir=tmp_path, progress=False)  # no data needed: cached
    assert again.densities == first.densities


def test_dependencies_come_first_and_cycles_are_refused(monkeypatch):
    reinit, ticket = LOTTERY.replace(control="reinit"), LOTTERY
    assert with_dependencies([reinit]) == [ticket, reinit]
    assert with_dependencies([reinit, ticket]) == [ticket, reinit]
    assert with_dependencies([reinit], have=lambda config: config == ticket) == [reinit]
    with BRANCHES.temporarily(Branch("loop_a", flipped_signs, label="a", needs=("loop_b",)),
                              Branch("loop_b", flipped_signs, label="b", needs=("loop_a",))):
        with pytest.raises(LthkitError, match="depends on itself"):
            with_dependencies([LOTTERY.replace(control="loop_a")])


def test_unknown_controls_and_taken_names_are_refused():
    with pytest.raises(LthkitError, match="unknown control 'nosuch'; choose one of ticket, reinit, random_prune"):
        LOTTERY.replace(control="nosuch")
    with pytest.raises(LthkitError, match="registered already"):
        with BRANCHES.temporarily(Branch("ticket", flipped_signs, label="another ticket")):
            pass
    assert BRANCHES["ticket"].label == "winning ticket"


def test_a_new_branch_is_added_in_one_place_and_seen_everywhere(toy_branch, tiny_data, tmp_path, capsys):
    """Issue 26: the toy control is one entry (FLIPPED above). The config accepts it, the command line offers it
    as a --control, the summary reader accepts its rows, the figures use its label and colour, and the dashboard
    offers it; nothing else was edited."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.colors import to_hex

    from lthkit.cli import build_parser
    from lthkit.reporting.plots import accuracy_vs_density
    from lthkit.reporting.summaries import read_summary_csv, write_summary_csv

    config = LOTTERY.replace(control=toy_branch)
    run = [option for action in build_parser()._subparsers._group_actions[0].choices["run"]._actions
           if "--control" in action.option_strings for option in action.choices]
    assert toy_branch in run and toy_branch in BRANCHES.controls()
    results = run_experiments([LOTTERY, config], cache_dir=tmp_path / "cache", data=tiny_data, progress=False)
    write_summary_csv(tmp_path / "summary.csv", results)
    rows = read_summary_csv(tmp_path / "summary.csv")
    assert {row["control"] for row in rows} == {"ticket", toy_branch}
    figure = accuracy_vs_density(results)
    lines = {line.get_label(): to_hex(line.get_color()) for axes in figure.axes for line in axes.get_lines()}
    assert lines.get("flipped signs") == "#9467bd", lines
    try:
        from lthkit.course.dashboard import Dashboard
    except ImportError:  # ipywidgets is a notebook requirement
        return
    dashboard = Dashboard(LOTTERY, cache_dir=tmp_path / "cache", progress=False)
    assert ("flipped signs", toy_branch) in list(dashboard.controls["control"].options)
