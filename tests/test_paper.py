"""lthkit.studies.paper: the claims table from summary rows, and the reproduce command end to end."""

import json

import pytest

from lthkit.cli import main
from lthkit.reporting.summaries import read_summary_csv
from lthkit.studies.paper import (PAPER_PM, REPORT_BEGIN, ROUNDS_BEGIN, ROUNDS_END, claims_markdown, paper_claims,
                                  rounds_markdown, update_report)


def rows_like_the_paper(trials=3):
    """Summary rows that behave as the paper reports (and a controllable variant)."""
    rows = []
    for trial in range(trials):
        for round_index, percent in enumerate(PAPER_PM[:17]):
            density = percent / 100
            ticket_acc = 0.980 + (0.004 if 5 <= round_index <= 12 else 0.0)
            rows.append(dict(control="ticket", trial=trial, round=round_index, density=density,
                             early_stop_iter=int(5000 * (0.6 if round_index == 7 else 1.0)),
                             test_acc_early_stop=ticket_acc + 0.0005 * trial, test_acc_final=ticket_acc))
            rows.append(dict(control="reinit", trial=trial, round=round_index, density=density,
                             early_stop_iter=9000, test_acc_early_stop=0.985 if round_index < 7 else 0.970,
                             test_acc_final=0.97))
            rows.append(dict(control="random_prune", trial=trial, round=round_index, density=density,
                             early_stop_iter=9000, test_acc_early_stop=0.975, test_acc_final=0.975))
    return rows


def noisy(rows, spread_points=0.05):
    """The rows with a small per-trial wobble on every accuracy (so intervals have a width)."""
    import random

    out = []
    for row in rows:
        row = dict(row)
        wobble = random.Random(f"{row['control']}-{row['trial']}-{row['round']}").uniform(-1, 1)
        row["test_acc_early_stop"] += spread_points / 100 * wobble
        out.append(row)
    return out


def test_claims_that_hold_are_consistent_and_every_verdict_is_one_of_three_words():
    judged = paper_claims(rows_like_the_paper(trials=5))
    verdicts = {item.claim.id: item.verdict for item in judged}
    assert set(verdicts.values()) <= {"consistent", "inconclusive", "inconsistent"}
    assert verdicts["dense_accuracy"] == "consistent"       # 98.00 to 98.20, inside 98.0 ± 0.2
    assert verdicts["earlier_at_21"] == "consistent"        # 40% earlier in every trial
    assert verdicts["earlier_by_38"] == "consistent"        # 40 in 38 ± 15
    assert verdicts["above_dense_13_5"] == "consistent"     # +0.4 points in every trial
    assert verdicts["back_to_dense_3_6"] == "consistent"    # +0.0
    assert verdicts["reinit_below_dense_21"] == "consistent"  # 97.0 against 98.0-98.2
    assert verdicts["ticket_above_random_prune_10_7"] == "consistent"
    dense = judged[0]
    assert (dense.claim.id, dense.interval.n) == ("dense_accuracy", 5)
    assert abs(dense.interval.estimate - 98.10) < 1e-9


def test_claims_that_fail_are_inconsistent():
    rows = [dict(row) for row in rows_like_the_paper(trials=5)]
    for row in rows:
        if row["control"] == "ticket" and row["round"] == 0:
            row["test_acc_early_stop"] = 0.95 + 0.001 * row["trial"]
        if row["control"] == "ticket" and row["round"] == 7:
            row["early_stop_iter"] = 8000
    verdicts = {item.claim.id: item.verdict for item in paper_claims(rows)}
    assert verdicts["dense_accuracy"] == "inconsistent"
    assert verdicts["earlier_at_21"] == "inconsistent"  # 60% later in every trial


def test_an_interval_that_straddles_the_tolerance_is_inconclusive_not_a_match():
    rows = noisy(rows_like_the_paper(trials=3), spread_points=0.6)
    verdicts = {item.claim.id: item.verdict for item in paper_claims(rows)}
    assert verdicts["back_to_dense_3_6"] == "inconclusive"


def test_a_difference_below_the_noise_floor_is_never_consistent():
    """Dense networks of different seeds that differ by a point make a 0.4-point gain no finding."""
    rows = [dict(row) for row in rows_like_the_paper(trials=5)]
    for row in rows:
        if row["control"] == "reinit" and row["round"] == 0:
            row["test_acc_early_stop"] = 0.965 + 0.01 * (row["trial"] % 2)
    judged = {item.claim.id: item for item in paper_claims(rows)}
    assert judged["above_dense_13_5"].noise_floor > 0.4
    assert judged["above_dense_13_5"].verdict == "inconclusive"


def test_claims_are_records_with_unique_ids_and_sources_and_a_claim_can_be_added():
    from lthkit.reporting.claims import Claim
    from lthkit.reporting.stats import Expectation
    from lthkit.studies.paper import CLAIMS

    assert len({spec.id for spec in CLAIMS}) == len(CLAIMS)
    assert all(spec.source for spec in CLAIMS), "every paper value has a source"
    assert all(("§" in spec.source or "Figure" in spec.source or "Table" in spec.source or "none:" in spec.source)
               for spec in CLAIMS)
    assert [item.claim.id for item in paper_claims(rows_like_the_paper(trials=5))] == [spec.id for spec in CLAIMS]
    trials = Claim("five_trials", "the paper ran five trials", "5", "§2", Expectation("near", 5, 0), "trials",
                   "trials in the ticket control",
                   lambda table: {trial: float(len(table["ticket"])) for trial in table["ticket"]})
    (item,) = paper_claims(rows_like_the_paper(trials=3), claims=[trials])
    assert (item.claim.id, item.interval.estimate, item.verdict) == ("five_trials", 3.0, "inconsistent")


def test_partial_results_give_only_the_measurable_claims():
    rows = [row for row in rows_like_the_paper(1) if row["control"] == "ticket" and row["round"] <= 3]
    judged = paper_claims(rows)
    assert [item.claim.id for item in judged] == ["dense_accuracy"]
    assert judged[0].verdict == "inconclusive", "one trial gives no interval"
    assert "| the dense network's test accuracy" in claims_markdown(judged)


def test_reinit_draws_are_averaged_within_a_trial_before_the_interval():
    rows = rows_like_the_paper(trials=3)
    extra = [dict(row, control="reinit_draw2", test_acc_early_stop=row["test_acc_early_stop"] - 0.01)
             for row in rows if row["control"] == "reinit"]
    judged = {item.claim.id: item for item in paper_claims(rows + extra)}
    assert judged["reinit_below_dense_21"].interval.n == 3, "one value per trial, not per draw"
    # re-init 97.0 and 96.0 -> 96.5, against dense 98.00/98.05/98.10
    assert abs(judged["reinit_below_dense_21"].interval.estimate - (96.5 - 98.05)) < 1e-9


def test_claims_csv_is_written_with_the_report(tmp_path):
    from lthkit.reporting.claims import CLAIM_COLUMNS, read_claims_csv
    from lthkit.reporting.summaries import SUMMARY_COLUMNS

    lines = [",".join(SUMMARY_COLUMNS)] + [",".join(str(row[c]) for c in SUMMARY_COLUMNS)
                                          for row in rows_like_the_paper(trials=5)]
    (tmp_path / "summary.csv").write_text("\n".join(lines) + "\n")
    update_report(tmp_path)
    rows = read_claims_csv(tmp_path / "claims.csv")
    assert [row["claim_id"] for row in rows][0] == "dense_accuracy" and len(rows[0]) == len(CLAIM_COLUMNS)
    assert all(row["paper_source"] for row in rows)
    text = (tmp_path / "README.md").read_text()
    assert "consistent" in text and "(of 14 claims)" in text


def test_update_report_keeps_the_prose(tmp_path):
    from lthkit.reporting.summaries import SUMMARY_COLUMNS

    lines = [",".join(SUMMARY_COLUMNS)] + [",".join(str(row[c]) for c in SUMMARY_COLUMNS)
                                          for row in rows_like_the_paper()]
    (tmp_path / "summary.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "README.md").write_text(f"# Report\n\nprose before\n\n{REPORT_BEGIN}\nold\n<!-- claims:end -->\n\n"
                                        f"between\n\n{ROUNDS_BEGIN}\nstale\n{ROUNDS_END}\n\nafter\n")
    update_report(tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert text.startswith("# Report\n\nprose before") and text.rstrip().endswith("after")
    assert "old" not in text and "stale" not in text and "| the dense network's test accuracy" in text
    assert text.index("| the dense network's test accuracy") < text.index("between") < text.index("| 16 | 2.9 |")
    update_report(tmp_path)
    assert (tmp_path / "README.md").read_text() == text, "recomputing gives the same report"


def test_update_report_appends_the_tables_to_a_readme_without_markers(tmp_path):
    from lthkit.reporting.summaries import SUMMARY_COLUMNS

    lines = [",".join(SUMMARY_COLUMNS)] + [",".join(str(row[c]) for c in SUMMARY_COLUMNS)
                                          for row in rows_like_the_paper(1)]
    (tmp_path / "summary.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "README.md").write_text("# Report\n")
    text = update_report(tmp_path).read_text()
    assert text.startswith("# Report\n") and "| the dense network's test accuracy" in text and "| 0 | 100.0 |" in text


def test_rounds_markdown_gives_mean_min_and_max_per_control():
    table = rounds_markdown(rows_like_the_paper())
    lines = table.strip().splitlines()
    assert len(lines) == 2 + 17, "a header, a rule and one line per round"
    assert lines[0].count("test acc. at early stop") == 3
    dense = lines[2].split(" | ")
    # ticket accuracies 98.00, 98.05, 98.10 over the three trials; every early stop at 5,000
    assert dense[:4] == ["| 0", "100.0", "98.05 [98.00, 98.10]", "5,000 [5,000, 5,000]"]
    assert lines[9].split(" | ")[1] == "21.1" and "3,000 [3,000, 3,000]" in lines[9]


def test_reproduce_command_writes_the_outputs(mnist_root, tmp_path):
    out = tmp_path / "paper"
    status = main(["reproduce", "--preset", "paper", "--trials", "2", "--rounds", "2", "--iterations", "20",
                   "--eval-every", "10", "--validation-size", "200", "--data", str(mnist_root),
                   "--cache", str(tmp_path / "cache"), "--out", str(out), "--no-progress"])
    assert status == 0
    rows = read_summary_csv(out / "summary.csv")
    assert len(rows) == 2 * 3 * 3  # trials × controls × (rounds + 1)
    assert {row["control"] for row in rows} == {"ticket", "reinit", "random_prune"}
    for name in ("accuracy_vs_density.png", "early_stop_vs_density.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    info = json.loads((out / "run_info.json").read_text())
    assert info["trials"] == 2 and len(info["runs"]) == 6 and info["hardware"]["device"] == "cpu"
    assert info["config"]["train"]["batch_size"] == 60 and info["config"]["train"]["lr"] == 0.0012
    assert "| the dense network's test accuracy" in (out / "README.md").read_text()


def test_bad_controls_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "--out", "x", "--control", "ticket,lucky"])
    assert exit_info.value.code == 2 and "unknown control 'lucky'" in capsys.readouterr().err


def test_patience_effect_replays_the_rule():
    from lthkit.studies.paper import patience_effect

    flat = {"iteration": list(range(0, 1000, 100)), "val_loss": [5, 4, 3, 2, 3, 3, 3, 3, 3, 3]}
    assert patience_effect(flat, 300) == {"stop_iteration": 600, "early_stop_with_patience": 300,
                                          "early_stop_full": 300, "moved": False}
    late = {"iteration": list(range(0, 1000, 100)), "val_loss": [5, 4, 3, 2, 3, 3, 3, 3, 3, 1]}
    assert patience_effect(late, 300)["moved"] and patience_effect(late, 1000)["moved"] is False


def test_patience_check_script(tmp_path):
    import subprocess
    import sys

    from lthkit.core.data import REPO_ROOT as REPO_ROOT_FOR_SCRIPTS

    entry = tmp_path / "cache" / "abc"
    entry.mkdir(parents=True)
    config = {"control": "ticket", "seed": 0, "train": {"patience": None, "iterations": 50_000}}
    (entry / "config.json").write_text(json.dumps({"config": config}))
    curve = {"iteration": [0, 100, 200, 300], "val_loss": [2.0, 1.0, 1.5, 1.6]}
    (entry / "round_000.json").write_text(json.dumps(
        {"round": 0, "density": 1.0, "train": {"iterations": 50_000, "curve": curve}}))
    out = tmp_path / "check.csv"
    done = subprocess.run([sys.executable, str(REPO_ROOT_FOR_SCRIPTS / "scripts" / "patience_check.py"), "--cache",
                           str(tmp_path / "cache"), "--patience", "150", "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "moved in 0" in done.stdout
    assert out.read_text().splitlines()[1] == "ticket,0,0,1.0,50000,300,100,100,False"


def test_dense_probe_truncated_init_keeps_glorot_variance_inside_two_sigma():
    import math

    import torch

    from lthkit.core.models import build_model, truncated_glorot_

    model = build_model("lenet300_100", seed=3)
    before = model.fc1.bias.clone()
    truncated_glorot_(model, seed=3)
    weight = model.fc1.weight
    glorot_std = math.sqrt(2.0 / (784 + 300))
    assert weight.abs().max() <= 2 * glorot_std / 0.87962566103423978 + 1e-6, "nothing outside ±2σ"
    assert abs(weight.std().item() / glorot_std - 1) < 0.02, "Glorot's variance"
    assert torch.equal(model.fc1.bias, before), "biases untouched"


TINY_REPRODUCE = ["reproduce", "--preset", "paper", "--rounds", "1", "--iterations", "4", "--eval-every", "2",
                  "--validation-size", "200", "--train-size", "600", "--test-size", "200", "--no-progress",
                  "--workers", "1"]


def test_merge_runs_of_split_trials_equals_the_whole_run(mnist_root, tmp_path, capsys):
    common = [*TINY_REPRODUCE, "--data", str(mnist_root)]
    for name, trials in (("whole", ["--trials", "2"]), ("first", ["--trials", "1"]),
                         ("second", ["--seed", "1", "--trials", "1"])):  # each on its own cache: really trained
        assert main([*common, *trials, "--cache", str(tmp_path / f"cache-{name}"), "--out", str(tmp_path / name)]) == 0
    merged = tmp_path / "merged"
    assert main(["merge-runs", str(tmp_path / "second"), str(tmp_path / "first"), "--out", str(merged)]) == 0
    assert (merged / "summary.csv").read_text() == (tmp_path / "whole" / "summary.csv").read_text()
    info = json.loads((merged / "run_info.json").read_text())
    assert info["trials"] == 2 and len(info["runs"]) == 6 and len(info["merged_from"]) == 2
    assert [part["folder"] for part in info["merged_from"]] == [str(tmp_path / "second"), str(tmp_path / "first")]
    assert "| the dense network's test accuracy" in (merged / "README.md").read_text()
    assert (merged / "accuracy_vs_density.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()

    def refused(folders, message):
        before = sorted(path.name for path in tmp_path.iterdir())
        assert main(["merge-runs", *map(str, folders), "--out", str(tmp_path / "refused")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert sorted(path.name for path in tmp_path.iterdir()) == before  # nothing written

    refused([tmp_path / "first"], "at least two")
    refused([tmp_path / "first", tmp_path / "whole"], "trial 0 is in both")
    other = json.loads((tmp_path / "second" / "run_info.json").read_text())
    other["code_version"] = "0.0.1+other"
    (tmp_path / "second" / "run_info.json").write_text(json.dumps(other))
    refused([tmp_path / "first", tmp_path / "second"], "differ in their code version")
    other["code_version"] = info["code_version"]
    other["config"]["train"]["lr"] = 0.1
    (tmp_path / "second" / "run_info.json").write_text(json.dumps(other))
    refused([tmp_path / "first", tmp_path / "second"], "differ in their config")
    (tmp_path / "second" / "run_info.json").write_text("{")
    refused([tmp_path / "first", tmp_path / "second"], "cannot read")
