"""lthkit.widgets: the dashboard driven from Python, no browser: controls, Run, plotted data, errors."""

import matplotlib

matplotlib.use("Agg")

import base64  # noqa: E402

import ipywidgets as widgets  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import lthkit.lottery  # noqa: E402
import lthkit.train  # noqa: E402
from lthkit.lottery import LotteryConfig  # noqa: E402
from lthkit.train import TrainConfig  # noqa: E402
from lthkit.widgets import Dashboard, config_from_controls, run_label  # noqa: E402

BASE = LotteryConfig(rounds=2, target_sparsity=0.5, train=TrainConfig(iterations=30, eval_every=10, batch_size=32))


@pytest.fixture
def trainings(monkeypatch):
    """Counts every network lthkit trains (through lthkit.lottery's reference to train)."""
    calls = []
    real_train = lthkit.lottery.train

    def counting_train(*args, **kwargs):
        calls.append(kwargs.get("description"))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(lthkit.lottery, "train", counting_train)
    return calls


@pytest.fixture
def make_dashboard(tiny_data, tmp_path):
    def make(**kwargs):
        return Dashboard(BASE, data=tiny_data, cache_dir=tmp_path / "cache", progress=False, **kwargs)
    return make


def select(dashboard, **values):
    for name, value in values.items():
        dashboard.controls[name].value = value


def test_run_trains_the_selected_config_and_plots_it(make_dashboard, trainings):
    dashboard = make_dashboard()
    empty_png = dashboard.image.value
    assert dashboard.plotted() == {}
    select(dashboard, sparsity=0.6, rounds=2, scope="global")
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
    select(dashboard, sparsity=0.9, rounds=7, rewind="iteration", rewind_iteration=5, control="reinit",
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
    import lthkit.widgets

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(lthkit.widgets, "run_experiments", broken)
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
    chosen = dict(sparsity=0.8, rounds=4, control="ticket", scope="layer", rewind_iteration=7, rewind_fraction=0.4)
    assert config_from_controls(BASE, rewind="init", **chosen) == config_from_controls(
        BASE, rewind="init", **dict(chosen, rewind_iteration=3, rewind_fraction=0.1))
    assert config_from_controls(BASE, rewind="iteration", **chosen).rewind_iteration == 7
    assert config_from_controls(BASE, rewind="fraction", **chosen).rewind_fraction == 0.4
    assert run_label(config_from_controls(BASE, rewind="iteration", **chosen)) == \
        "winning ticket, layer-wise, rewind θ_7, 80% in 4 rounds"


def test_dashboard_shows_real_widgets_and_a_static_fallback(make_dashboard):
    dashboard = make_dashboard()
    assert dashboard.run_button.description == "Run"
    kinds = {name: type(widget).__name__ for name, widget in dashboard.controls.items()}
    assert kinds["sparsity"] == "FloatSlider" and kinds["rounds"] == "IntSlider"
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
    monkeypatch.setattr(lthkit.lottery, "tqdm", RecordingNotebookBar)
    monkeypatch.setattr(lthkit.train, "tqdm", RecordingNotebookBar)
    monkeypatch.setattr(tqdm.notebook, "display", display)
    monkeypatch.setattr(widget_output, "get_ipython", FakeKernelShell)
    dashboard = Dashboard(BASE, data=tiny_data, cache_dir=tmp_path / "cache", progress=True)
    dashboard.controls["control"].value = "reinit"  # trains its ticket first: two IMP runs
    bars.clear()
    dashboard.run_button.click()

    assert dashboard.errors.outputs == () and len(dashboard.runs) == 1
    run_bar, *training_bars = bars
    # The dashboard's own bar is never displayed on its own: its widget is in the progress box.
    assert dashboard.progress.children == (run_bar.container,) and (run_bar.n, run_bar.total) == (6, 6)
    # The others: the driver's IMP bar (ticket and reinit trained together) and one per round of each (3 + 3).
    assert [bar.desc for bar in training_bars if bar.desc.startswith("IMP")] == ["IMP, 2 runs"]
    assert len(training_bars) == 1 + 6
    request_id = FakeKernelShell.request["header"]["msg_id"]
    assert [container for container, _, _ in displayed] == [bar.container for bar in training_bars]
    for container, log_capturing, errors_capturing in displayed:
        assert (log_capturing, errors_capturing) == (request_id, ""), \
            "a progress bar was displayed outside the dashboard's training log"
    assert dashboard.log.msg_id == ""  # capture ended with the run
    captured = capsys.readouterr()
    assert "IMP" not in captured.err and "IMP" not in captured.out  # no text bar either
