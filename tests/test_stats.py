"""lthkit.reporting.stats and .claims: intervals against an independent computation, verdicts, input checks."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lthkit.errors import LthkitError
from lthkit.reporting.claims import CLAIM_COLUMNS, Claim, claims_csv_text, judge_claims, read_claims_csv
from lthkit.reporting.stats import (Expectation, Interval, count_verdicts, headline, paired_differences, spread,
                                    t_interval)

# Student's t, 97.5th percentile, from a printed table: the oracle for scipy's interval.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 9: 2.262, 14: 2.145}


@pytest.mark.parametrize("values", [[0.30, 0.45, 0.12, 0.49, 0.34], [98.1, 97.9], [1.0, 2.0, 4.0],
                                    [0.1 * k for k in range(10)], [5.0, 5.5, 4.0, 6.0]])
def test_t_interval_is_the_textbook_one(values):
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = T_975[n - 1] * sd / math.sqrt(n)
    interval = t_interval(values)
    assert interval.n == n and interval.method == "t" and interval.confidence == 0.95
    assert interval.estimate == pytest.approx(mean)
    assert interval.low == pytest.approx(mean - half, abs=2e-3 * sd + 1e-12)
    assert interval.high == pytest.approx(mean + half, abs=2e-3 * sd + 1e-12)


def test_one_value_gives_no_interval_and_equal_values_a_point():
    one = t_interval([0.5])
    assert (one.low, one.high) == (-math.inf, math.inf)
    assert "no interval" in one.text()
    same = t_interval([2.0, 2.0, 2.0])
    assert (same.low, same.estimate, same.high) == (2.0, 2.0, 2.0)


@pytest.mark.parametrize("values, message", [([], "no values"), ([1.0, float("nan")], "finite"),
                                             ([1.0, "x"], "numbers"), ([math.inf, 1.0], "finite")])
def test_bad_values_are_refused_in_one_line(values, message):
    with pytest.raises(LthkitError, match=message):
        t_interval(values)


@given(st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0), st.integers(), st.text()))
def test_a_confidence_outside_zero_one_is_refused(confidence):
    with pytest.raises(LthkitError, match="confidence"):
        t_interval([1.0, 2.0], confidence=confidence)


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=30))
def test_the_interval_contains_its_mean_and_is_ordered(values):
    interval = t_interval(values)
    assert interval.low <= interval.estimate <= interval.high


@given(kind=st.sampled_from(["at_least", "at_most", "near"]), value=st.floats(-100, 100),
       tolerance=st.floats(0, 10), centre=st.floats(-200, 200), width=st.floats(0, 50))
def test_the_three_verdicts_partition_every_interval(kind, value, tolerance, centre, width):
    expectation = Expectation(kind, value, tolerance)
    interval = Interval(centre, centre - width, centre + width, 5)
    verdict = expectation.judge(interval)
    low, high = expectation.bounds()
    inside = low <= interval.low and interval.high <= high
    outside = interval.high < low or interval.low > high
    assert verdict == ("consistent" if inside else "inconsistent" if outside else "inconclusive")


@given(st.one_of(st.just("above"), st.text(max_size=5).filter(lambda t: t not in ("at_least", "at_most", "near"))))
def test_unknown_expectation_kinds_are_refused(kind):
    with pytest.raises(LthkitError, match="unknown expectation"):
        Expectation(kind, 1.0)


@pytest.mark.parametrize("value, tolerance, message", [(math.nan, 0.1, "value"), (1.0, -0.1, "tolerance"),
                                                       ("1", 0.1, "value"), (True, 0.1, "value"),
                                                       (1.0, math.inf, "tolerance")])
def test_bad_expectations_are_refused(value, tolerance, message):
    with pytest.raises(LthkitError, match=message):
        Expectation("near", value, tolerance)


def test_the_noise_floor_only_holds_back_claimed_differences():
    small_but_sure = Interval(0.1, 0.08, 0.12, 50)
    assert Expectation("at_least", 0.0).judge(small_but_sure) == "consistent"
    assert Expectation("at_least", 0.0).judge(small_but_sure, floor=0.15) == "inconclusive"
    assert Expectation("near", 0.1, 0.05).judge(small_but_sure, floor=0.15) == "inconclusive"  # 0.05-0.15: a difference
    assert Expectation("near", 0.0, 0.2).judge(small_but_sure, floor=0.15) == "consistent"  # "no difference"
    assert Expectation("at_least", 0.0, 0.2).judge(small_but_sure, floor=0.15) == "consistent"  # "no worse than"


def test_paired_differences_keep_only_trials_with_both():
    assert paired_differences({2: 3.0, 0: 1.0, 1: 5.0}, {0: 0.5, 2: 1.0}) == {0: 0.5, 2: 2.0}


def test_spread_is_the_sample_standard_deviation():
    import statistics

    values = [97.8, 98.0, 98.3, 97.9]
    assert spread(values) == pytest.approx(statistics.stdev(values))
    assert spread([1.0]) == 0.0


def test_verdict_counts_and_headline_refuse_other_words():
    assert count_verdicts(["consistent", "inconsistent"]) == {"consistent": 1, "inconclusive": 0, "inconsistent": 1}
    assert headline(["inconclusive"]) == "0 consistent, 1 inconclusive, 0 inconsistent (of 1 claim)"
    with pytest.raises(LthkitError, match="unknown verdict"):
        count_verdicts(["matches"])


def test_claims_csv_round_trips_and_a_bad_verdict_is_refused(tmp_path):
    claim = Claim("gain", "a gain", "+1", "§1", Expectation("at_least", 0.0), "points", "by hand",
                  measure=lambda data: data)
    judged = judge_claims([claim], {0: 1.0, 1: 1.1, 2: 0.9})
    (tmp_path / "claims.csv").write_text(claims_csv_text(judged))
    (row,) = read_claims_csv(tmp_path / "claims.csv")
    assert list(row) == list(CLAIM_COLUMNS)
    assert (row["claim_id"], row["n"], row["verdict"], float(row["estimate"])) == ("gain", "3", "consistent", 1.0)
    (tmp_path / "bad.csv").write_text(claims_csv_text(judged).replace("consistent", "matches"))
    with pytest.raises(LthkitError, match="verdict 'matches' is not one of"):
        read_claims_csv(tmp_path / "bad.csv")
    with pytest.raises(LthkitError, match="no claims file"):
        read_claims_csv(tmp_path / "missing.csv")


def test_a_claim_that_needs_an_unmeasured_floor_is_refused():
    claim = Claim("gain", "a gain", "+1", "§1", Expectation("at_least", 0.0), "points", "by hand",
                  measure=lambda data: data, floor="accuracy")
    with pytest.raises(LthkitError, match="noise floor 'accuracy'"):
        judge_claims([claim], {0: 1.0, 1: 2.0}, floors={})
