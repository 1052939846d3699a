"""lthkit.course.dashboard: the dashboard driven from Python, no browser: controls, Run, plotted data, errors."""

import matplotlib

matplotlib.use("Agg")

import base64  # noqa: E402
import re  # noqa: E402

import ipywidgets as widgets  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import lthkit.core.train  # noqa: E402
import lthkit.imp.driver  # noqa: E402
from lthkit.core.train import TrainConfig  # noqa: E402
from lthkit.course.dashboard import Dashboard, config_from_controls, run_label  # noqa: E402
from lthkit.errors import LthkitError  # noqa: E402
from lthkit.imp.config import LotteryConfig  # noqa: E402

BASE = LotteryConfig(rounds=2, target_sparsity=0.5, train=TrainConfig(iterations=30, eval_every=10, batch_size=32))


@pytest.fixture
def trainings(monkeypatch):
    """Counts every network lthkit trains (through lthkit.imp.driver's reference to train)."""
    calls = []
    real_train = lthkit.imp.driver.train

    def counting_train(*args, **kwargs):
        calls.append(kwargs.get("description"))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(lthkit.imp.driver, "train", counting_train)
    return calls


@pytest.fixture
def make_dashboard(tiny_data, tmp_path):
    def make(base=BASE, **kwargs):
        return Dashboard(base, data=tiny_data, cache_dir=tmp_path / "cache", progress=False, **kwargs)
    return make


def select(dashboard, **values):
    for name, value in values.items():
        dashboard.controls[name].value = value


def test_run_trains_the_selected_config_and_plots_it(make_dashboard, trainings):
    dashboard = make_dashboard()
    empty_png = dashboard.image.value
    assert dashboard.plotted() == {}
    select(dashboard, density=0.4, rounds=2, scope="global")
    dashboard.run_button.click()

    config = BASE.replace(target_sparsity=0.6, scope="global")
    assert dashboard.config() == config
    assert len(trainings) == 3  # round 0 and two pruned rounds
    result = dashboard.runs[run_label(config)]
    densities, accuracies = dashboard.plotted()[run_label(config)]
    assert np.allclose(densities, result.densities)
    assert densities[-1] == pytest.approx(0.4, abs=0.02)  # global scope: 60% pruned in 2 rounds
    assert np.allclose(accuracies, [100 * a for a in result.test_acc_early_stop])
    assert np.array_equal(dashboard.plotted("early_stop")[run_label(config)][1], result.early_stop_iterations)
    assert bytes(dashboard.image.value) != bytes(empty_png) and bytes(dashboard.image.value).startswith(b"\x89PNG")
    bar = dashboard.progress.children[0].children[1]
    assert isinstance(bar, widgets.FloatProgress) and (bar.value, bar.max) == (3, 3)
    assert not dashboard.run_button.disabled
    assert dashboard.errors.outputs == ()


def test_moving_controls_never_trains(make_dashboard, trainings):
    dashboard = make_dashboard()
    select(dashboard, density=0.1, rounds=7, rewind="iteration", rewind_iteration=5, control="reinit",
           scope="global", seed=3, rewind_fraction=0.3, metric="test_acc_final", overlay=False)
    select(dashboard, rewind="fraction", control="random_prune")
    assert trainings == []
    assert "has not run yet" in dashboard.status.value
    assert dashboard.controls["rewind_iteration"].disabled and not dashboard.controls["rewind_fraction"].disabled


def test_a_cached_config_is_drawn_on_selection_without_training(make_dashboard, trainings):
    first = make_dashboard()
    select(first, rounds=1)
    first.run_button.click()
    assert len(trainings) == 2

    fresh = make_dashboard()  # a new session: nothing in memory, the disk cache has the run
    label = run_label(fresh.config().replace(rounds=1))
    assert label not in fresh.plotted()
    select(fresh, rounds=1)  # selecting it draws it at once ...
    assert label in fresh.plotted() and "is in the cache" in fresh.status.value
    fresh.run_button.click()  # ... and Run pins it, still without training
    assert len(trainings) == 2
    assert list(fresh.runs) == [label] and "from the cache" in fresh.status.value
    assert fresh.last_draw_seconds > 0


def test_overlay_keeps_earlier_runs_and_clear_removes_them(make_dashboard):
    dashboard = make_dashboard()
    select(dashboard, rounds=1)
    dashboard.run_button.click()
    select(dashboard, scope="global")
    dashboard.run_button.click()
    assert len(dashboard.plotted()) == 2

    select(dashboard, overlay=False, scope="layer")  # back to the first (cached) config
    dashboard.run_button.click()
    assert list(dashboard.plotted()) == [run_label(dashboard.config())]

    dashboard.clear_button.click()
    assert dashboard.runs == {}
    assert list(dashboard.plotted()) == [run_label(dashboard.config())]  # the selection, still cached


def test_a_control_trains_its_ticket_first(make_dashboard, trainings):
    dashboard = make_dashboard()
    select(dashboard, rounds=1, control="random_prune")
    assert "Run trains 4 network(s)" in dashboard.status.value
    dashboard.run_button.click()
    assert len(trainings) == 4
    assert list(dashboard.runs) == [run_label(dashboard.config())]
    select(dashboard, control="ticket")  # the ticket was trained on the way: cached now
    assert "is in the cache" in dashboard.status.value and len(trainings) == 4


def test_an_invalid_combination_shows_a_one_line_error_in_the_dashboard(make_dashboard, trainings):
    dashboard = make_dashboard()
    select(dashboard, control="random_prune", rewind="none")
    assert "cannot run" in dashboard.status.value
    dashboard.run_button.click()
    (output,) = dashboard.errors.outputs
    assert output["name"] == "stderr"
    assert output["text"] == ("LthkitError: random_prune needs a rewind point (init, iteration or fraction), "
                              "not 'none'\n")
    assert trainings == [] and not dashboard.run_button.disabled


def test_an_unexpected_callback_error_shows_its_traceback_in_the_dashboard(make_dashboard, monkeypatch):
    import lthkit.course.dashboard

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(lthkit.course.dashboard, "run_experiments", broken)
    dashboard = make_dashboard()
    dashboard.run_button.click()
    text = "".join(output["text"] for output in dashboard.errors.outputs)
    assert "Traceback" in text and "RuntimeError: disk on fire" in text
    assert "disk on fire" in dashboard.status.value
    assert not dashboard.run_button.disabled
    bar = dashboard.progress.children[0].children[1]
    assert bar.bar_style == "danger"  # the unfinished run's bar turns red

    monkeypatch.undo()
    dashboard.run_button.click()  # the next Run starts clean
    assert dashboard.errors.outputs == ()


def test_config_from_controls_ignores_unused_rewind_parameters():
    chosen = dict(density=0.2, rounds=4, control="ticket", scope="layer", rewind_iteration=7, rewind_fraction=0.4)
    assert config_from_controls(BASE, rewind="init", **chosen) == config_from_controls(
        BASE, rewind="init", **dict(chosen, rewind_iteration=3, rewind_fraction=0.1))
    assert config_from_controls(BASE, rewind="iteration", **chosen).rewind_iteration == 7
    assert config_from_controls(BASE, rewind="init", **chosen).target_sparsity == 0.8  # 20% of the weights remaining
    assert config_from_controls(BASE, rewind="fraction", **chosen).rewind_fraction == 0.4
    assert run_label(config_from_controls(BASE, rewind="iteration", **chosen)) == \
        "winning ticket, layer-wise, rewind θ_7, 20% remaining after 4 rounds"


def test_dashboard_shows_real_widgets_and_a_static_fallback(make_dashboard):
    dashboard = make_dashboard()
    assert dashboard.run_button.description == "Run"
    kinds = {name: type(widget).__name__ for name, widget in dashboard.controls.items()}
    assert kinds["density"] == "FloatSlider" and kinds["rounds"] == "IntSlider"
    assert {kinds[n] for n in ("rewind", "control", "scope")} == {"Dropdown"}
    assert all(widget.continuous_update is False for widget in dashboard.controls.values()
               if isinstance(widget, (widgets.FloatSlider, widgets.IntSlider)))
    bundle = dashboard._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")  # GitHub and nbviewer show this instead


def test_snapshot_is_the_plot_as_a_static_image(make_dashboard):
    dashboard = make_dashboard()
    assert dashboard.snapshot().data == bytes(dashboard.image.value)


class FakeKernelShell:
    """Just enough of an IPython kernel shell for ipywidgets' Output capture to work without one.

    In a kernel, ``with output:`` sets the Output widget's ``msg_id`` to the request being handled
    (here: a button click's comm message), and the front end moves every display message of that
    request into the widget instead of the cell's output. ``msg_id`` is what decides where a bar
    renders, so a test can read it at the moment each bar is displayed.
    """

    request = {"header": {"msg_id": "comm-msg-of-the-run-click"}}

    def __init__(self):
        self.kernel = self

    def get_parent(self):
        return self.request

    def set_parent(self, parent):
        pass

    def showtraceback(self, *args, **kwargs):
        pass


def test_every_progress_bar_of_a_run_renders_inside_the_dashboard(tiny_data, tmp_path, monkeypatch, capsys):
    import tqdm.auto
    import tqdm.notebook
    from ipywidgets.widgets import widget_output

    bars, displayed = [], []

    class RecordingNotebookBar(tqdm.notebook.tqdm):
        def __init__(self, *args, **kwargs):
            bars.append(self)
            super().__init__(*args, **kwargs)

    def display(container):  # what tqdm.notebook calls to show a bar (IPython's display)
        displayed.append((container, dashboard.log.msg_id, dashboard.errors.msg_id))

    # As in a notebook: tqdm.auto is the widget bar, and Output widgets capture by request id.
    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingNotebookBar)
    monkeypatch.setattr(tqdm.notebook, "tqdm", RecordingNotebookBar)
    # The core binds tqdm.auto's bar at import (in a kernel that is already the notebook bar).
    monkeypatch.setattr(lthkit.imp.driver, "tqdm", RecordingNotebookBar)
    monkeypatch.setattr(lthkit.core.train, "tqdm", RecordingNotebookBar)
    monkeypatch.setattr(tqdm.notebook, "display", display)
    monkeypatch.setattr(widget_output, "get_ipython", FakeKernelShell)
    dashboard = Dashboard(BASE, data=tiny_data, cache_dir=tmp_path / "cache", progress=True)
    dashboard.controls["control"].value = "reinit"  # trains its ticket first: two IMP runs
    bars.clear()
    dashboard.run_button.click()

    assert dashboard.errors.outputs == () and len(dashboard.runs) == 1
    # Issue 27: one bar per run, the dashboard's own, in one format; the rounds show none of their own.
    (run_bar,) = [bar for bar in bars if getattr(bar, "container", None) is not None]  # the others: disabled
    assert dashboard.progress.children == (run_bar.container,) and (run_bar.n, run_bar.total) == (6, 6)
    label = run_bar.container.children[0].value.replace("\u2007", " ").strip()  # tqdm's HTML uses figure spaces
    assert re.fullmatch(r"weights remaining \d+\.\d%", label), label
    assert "IMP" not in label and "random" not in label and "density=" not in label
    assert run_bar.container.children[1].bar_style == "success"  # complete, green
    assert displayed == []  # nothing displayed anywhere else
    captured = capsys.readouterr()
    assert "IMP" not in captured.err and "IMP" not in captured.out  # no text bar either

    # A run drawn from the cache says so, on a full bar.
    dashboard.run_button.click()
    (bar,) = dashboard.progress.children
    assert bar.children[0].value.replace("\u2007", " ").strip() == "from cache"
    assert bar.children[1].bar_style == "success"
    assert "from the cache" in dashboard.status.value


def test_overlay_keeps_a_cached_preview_on_the_plot_at_the_next_run(make_dashboard):
    """Issue 27: a cached config drawn on selection stays on the plot when another one runs, overlay ticked."""
    first = make_dashboard()
    select(first, rounds=1)
    first.run_button.click()  # now cached

    fresh = make_dashboard()  # a new session
    select(fresh, rounds=1)  # the cached run, previewed: drawn, not pinned
    preview = run_label(fresh.config())
    assert preview in fresh.plotted() and preview not in fresh.runs
    select(fresh, scope="global")
    fresh.run_button.click()
    assert set(fresh.plotted()) == {preview, run_label(fresh.config())}, "the preview vanished at the next Run"
    select(fresh, overlay=False, rounds=2)
    fresh.run_button.click()
    assert list(fresh.plotted()) == [run_label(fresh.config())]  # overlay off: only the new run


def test_the_projector_layout_puts_run_and_the_plot_before_the_other_options(make_dashboard):
    """At 1024×768 the plot and Run must be on the first screen (tests/browser checks the pixels)."""
    dashboard = make_dashboard()
    parts = list(dashboard.widget.children)
    plot, more = parts.index(dashboard.image), next(i for i, part in enumerate(parts)
                                                    if "lthkit-more-options" in part._dom_classes)
    grid = parts[1]
    assert dashboard.run_button in grid.children[-1].children and plot < more
    assert dashboard.controls["metric"] not in grid.children  # a secondary option, folded away
    wide = make_dashboard(layout="wide")
    assert wide.image in wide.widget.children
    with pytest.raises(LthkitError, match="layout"):
        make_dashboard(layout="tiny")


# --- trials, bands, the reference, overlapping curves ------------------------------------------------


#: Trainings too short to reach 100% on the tiny data, so that the seeds differ and the bands have a width.
SHORT = BASE.replace(train=TrainConfig(iterations=4, eval_every=2, batch_size=8))


def test_trials_train_the_missing_seeds_and_draw_mean_and_min_max_band(make_dashboard, trainings):
    dashboard = make_dashboard(base=SHORT)
    select(dashboard, trials=3)
    configs = dashboard.trial_configs()
    assert [config.seed for config in configs] == [0, 1, 2]
    assert "Run trains 9 network(s)" in dashboard.status.value  # 3 trials × (round 0 + 2 rounds)
    dashboard.run_button.click()
    assert len(trainings) == 9
    label = run_label(configs[0])
    curve = f"{label} (3 trials)"
    results = dashboard.groups[label]
    assert [result.config.seed for result in results] == [0, 1, 2]
    # The oracle: the runs' own accuracies, per round, in percent.
    accuracies = 100 * np.array([[r.test_acc_early_stop for r in result.rounds] for result in results])
    densities, means = dashboard.plotted()[curve]
    assert np.allclose(means, accuracies.mean(0)) and np.allclose(densities, results[0].densities)
    band_densities, lows, highs = dashboard.plotted(bands=True)[curve]
    assert np.allclose(band_densities, densities)
    assert np.allclose(lows, accuracies.min(0)) and np.allclose(highs, accuracies.max(0))
    stops = np.array([result.early_stop_iterations for result in results])
    _, stop_lows, stop_highs = dashboard.plotted("early_stop", bands=True)[curve]
    assert np.allclose(stop_lows, stops.min(0)) and np.allclose(stop_highs, stops.max(0))
    assert np.any(highs > lows) or np.any(stop_highs > stop_lows), "the seeds all measured the same: no band"
    assert f"Trials per curve: {label}: 3" in dashboard.status.value

    # One more trial: Run trains only the missing seed, and the curve now has four.
    select(dashboard, trials=4)
    assert "has 3 of 4 trials in the cache: Run trains 3 network(s)" in dashboard.status.value
    dashboard.run_button.click()
    assert len(trainings) == 12
    assert f"{label} (4 trials)" in dashboard.plotted() and len(dashboard.groups[label]) == 4
    assert f"Trials per curve: {label}: 4" in dashboard.status.value
    # A single trial draws no band.
    select(dashboard, trials=1)
    assert dashboard.plotted(bands=True).keys() == {f"{label} (4 trials)"}


def test_reference_draws_the_committed_csv_means_and_bands_behind_the_runs(make_dashboard):
    import csv
    from collections import defaultdict

    from lthkit.course.dashboard import REFERENCE_CSV

    # The oracle: the committed file, read with the csv module.
    cells = defaultdict(list)
    with open(REFERENCE_CSV, newline="") as file:
        for row in csv.DictReader(file):
            cells[row["control"], int(row["round"])].append((float(row["density"]), float(row["test_acc_early_stop"])))
    names = {"ticket": "winning ticket", "reinit": "random re-init"}

    dashboard = make_dashboard()
    assert dashboard.plotted() == {}
    dashboard.controls["reference"].value = True
    lines, bands = dashboard.plotted(), dashboard.plotted(bands=True)
    assert set(lines) == {f"reference: {name} (full protocol, 5 trials, P_m)" for name in names.values()}
    for control, name in names.items():
        rounds = sorted(r for c, r in cells if c == control)
        per_round = [np.array(cells[control, r]) for r in rounds]
        densities, means = lines[f"reference: {name} (full protocol, 5 trials, P_m)"]
        assert np.allclose(densities, [cell[:, 0].mean() for cell in per_round])
        assert np.allclose(means, [100 * cell[:, 1].mean() for cell in per_round])
        _, lows, highs = bands[f"reference: {name} (full protocol, 5 trials, P_m)"]
        assert np.allclose(lows, [100 * cell[:, 1].min() for cell in per_round])
        assert np.allclose(highs, [100 * cell[:, 1].max() for cell in per_round])

    # Behind the learner's run: lower in the drawing order, lighter.
    dashboard.run_button.click()
    axis = dashboard.figure.axes[0]
    mine = next(line for line in axis.get_lines() if not line.get_label().startswith("reference"))
    for line in axis.get_lines():
        if line.get_label().startswith("reference"):
            assert line.get_zorder() < mine.get_zorder() and line.get_alpha() < 1
    # One curve per control: each in its control's color, the reference's.
    from matplotlib.colors import same_color

    from lthkit.imp.branches import BRANCHES
    assert same_color(mine.get_color(), BRANCHES.colour("ticket"))
    # Only the plotted runs' controls: the ticket alone now.
    assert [label for label in dashboard.plotted() if label.startswith("reference")] == [
        "reference: winning ticket (full protocol, 5 trials, P_m)"]
    dashboard.controls["reference"].value = False
    assert not any(label.startswith("reference") for label in dashboard.plotted())


def fake_curve(control, accuracies_per_trial, densities=(1.0, 0.5, 0.25)):
    """Results of several trials with these accuracies per round (what the plots and the overlap check read)."""
    from types import SimpleNamespace

    return [SimpleNamespace(config=BASE.replace(control=control, seed=seed), rounds=[
        SimpleNamespace(round=r, density=d, early_stop_iteration=100, test_acc_early_stop=a, test_acc_final=a)
        for r, (d, a) in enumerate(zip(densities, accuracies))]) for seed, accuracies in enumerate(accuracies_per_trial)]


def test_overlapping_curves_names_the_densities_where_the_bands_meet():
    from lthkit.course.dashboard import overlapping_curves

    ticket = fake_curve("ticket", [(0.90, 0.95, 0.96), (0.91, 0.96, 0.97)])
    # Separated at 50% (0.93-0.94 below 0.95-0.96), overlapping at 25%; the dense round is left out.
    reinit = fake_curve("reinit", [(0.90, 0.93, 0.955), (0.91, 0.94, 0.965)])
    assert overlapping_curves({"ticket": ticket, "re-init": reinit}) == [("ticket", "re-init", [0.25])]
    apart = fake_curve("reinit", [(0.90, 0.80, 0.70), (0.91, 0.81, 0.71)])
    assert overlapping_curves({"ticket": ticket, "re-init": apart}) == []
    # One trial has no spread: nothing to say.
    assert overlapping_curves({"ticket": ticket, "re-init": reinit[:1]}) == []


def test_status_line_says_when_the_spread_of_trials_hides_a_difference(make_dashboard):
    from lthkit.course.dashboard import overlapping_curves

    dashboard = make_dashboard(base=SHORT)
    select(dashboard, trials=2)
    dashboard.run_button.click()
    select(dashboard, control="reinit")
    dashboard.run_button.click()
    groups = dashboard.groups
    assert len(groups) == 2 and all(len(group) == 2 for group in groups.values())
    # The oracle, computed from the runs themselves: do the min/max intervals meet at a pruned round?
    ticket, reinit = (100 * np.array([[r.test_acc_early_stop for r in result.rounds] for result in group])
                      for group in groups.values())
    meet = [i for i in range(1, ticket.shape[1])
            if max(ticket[:, i].min(), reinit[:, i].min()) <= min(ticket[:, i].max(), reinit[:, i].max())]
    said = "winning ticket and random re-init overlap at these densities" in dashboard.status.value
    assert said == bool(meet), (meet, dashboard.status.value)
    assert said == bool(overlapping_curves(groups))
    # The plain-words message, on curves known to overlap.
    dashboard.groups = {"a": fake_curve("ticket", [(0.9, 0.95, 0.96), (0.9, 0.96, 0.97)]),
                        "b": fake_curve("reinit", [(0.9, 0.955, 0.965), (0.9, 0.965, 0.975)])}
    note = dashboard._curves_note()
    assert "winning ticket and random re-init overlap at these densities (50.0%, 25.0%)" in note
    assert "more trials or rounds would tell them apart" in note


def test_the_dashboard_speaks_the_glossarys_words_and_shows_it_in_its_help(make_dashboard):
    """Issue 31: one vocabulary (docs/glossary.md): the controls say "weights remaining", the help holds the glossary."""
    from lthkit.course.glossary import glossary_terms

    dashboard = make_dashboard()
    descriptions = [widget.description for widget in dashboard.controls.values()]
    assert "weights remaining" in descriptions and not any("sparsity" in text for text in descriptions)
    assert "weights remaining" in glossary_terms() and "matching" in glossary_terms()
    help_html = dashboard.help.children[0].value
    for term in ("weights remaining", "P_m", "matching", "late rewinding", "error barrier"):
        assert term in help_html, term
    assert "<table>" in help_html and "<script" not in help_html
