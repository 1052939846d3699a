"""Verdicts a reviewer would sign: paired differences, 95% intervals, and a three-way verdict.

Every study judges a paper's claim the same way:

1. **One value per trial.** A comparison is *paired within a trial* (the ticket at P_m 13.5% minus
   the dense network of the same trial: same θ₀, same data order), so that what differs between
   trials cancels; :func:`paired_differences` lines the trials up.
2. **A 95% interval** for the mean of those values: Student's *t* over the trials
   (:func:`t_interval`, from ``scipy.stats``). One trial gives no interval (``-inf, inf``).
3. **A verdict against a tolerance written down before the run** (:class:`Expectation`):
   *consistent* when the whole interval lies where the claim says, *inconsistent* when none of it
   does, *inconclusive* otherwise. An interval that straddles the claim's edge is not a match, and
   a point estimate alone never decides.
4. **A noise floor**: a claimed *difference* (``at_least`` or ``at_most``) whose estimate is smaller
   than the study's floor (what changing only the seed does: the spread between dense networks of
   different seeds) is never called consistent, however narrow its interval.

Example:
    >>> interval = t_interval([0.30, 0.45, 0.12, 0.49, 0.34])
    >>> round(interval.estimate, 2), round(interval.low, 2), round(interval.high, 2), interval.n
    (0.34, 0.16, 0.52, 5)
    >>> Expectation("at_least", 0.3, tolerance=0.1).judge(interval)   # the claim: more than +0.3 (± 0.1)
    'inconclusive'
    >>> Expectation("at_least", 0.0).judge(interval)                  # the claim: above zero
    'consistent'
    >>> Expectation("at_least", 0.0).judge(interval, floor=0.5)       # ... but below the noise floor
    'inconclusive'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import LthkitError

CONSISTENT, INCONCLUSIVE, INCONSISTENT = "consistent", "inconclusive", "inconsistent"
#: The three verdicts, in the order a headline counts them.
VERDICTS = (CONSISTENT, INCONCLUSIVE, INCONSISTENT)
#: What :class:`Expectation` can say about a quantity.
EXPECTATION_KINDS = ("at_least", "at_most", "near")
#: The interval every study reports.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values with its confidence interval (``method``: how it was computed)."""

    estimate: float
    low: float
    high: float
    n: int
    confidence: float = CONFIDENCE
    method: str = "t"

    def scaled(self, factor: float) -> Interval:
        """The same interval in other units (``factor`` > 0), e.g. fractions to percentage points."""
        return Interval(self.estimate * factor, self.low * factor, self.high * factor, self.n, self.confidence,
                        self.method)

    def text(self, digits: int = 2, unit: str = "") -> str:
        """``"0.34 [0.16, 0.52]"`` (``"0.34 (1 trial, no interval)"`` for one value).

        Example:
            >>> Interval(0.342, 0.161, 0.52, 5).text(2, " points")
            '0.34 points [0.16, 0.52]'
        """
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return f"{self.estimate:.{digits}f}{unit} (no interval from {self.n} value{'s' if self.n != 1 else ''})"
        return f"{self.estimate:.{digits}f}{unit} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _finite_values(values, what: str) -> list[float]:
    try:
        values = [float(value) for value in values]
    except (TypeError, ValueError):
        raise LthkitError(f"{what} must be numbers") from None
    if not values:
        raise LthkitError(f"{what}: no values to summarize")
    if not all(math.isfinite(value) for value in values):
        raise LthkitError(f"{what} must be finite numbers, got {values}")
    return values


def t_interval(values, confidence: float = CONFIDENCE) -> Interval:
    """The mean of ``values`` with its Student-*t* confidence interval (``scipy.stats.t``).

    Args:
        values: one number per trial (at least one, all finite).
        confidence: the interval's coverage, in (0, 1).

    Returns:
        An :class:`Interval`. One value gives ``low = -inf, high = inf`` (no interval can be had);
        values that are all equal give a zero-width interval.

    Raises:
        LthkitError: no values, a value that is not a finite number, or a confidence outside (0, 1).

    Example:
        >>> t_interval([1.0, 2.0, 3.0]).text(3)
        '2.000 [-0.484, 4.484]'
        >>> t_interval([5.0]).low
        -inf
    """
    from scipy import stats

    if not (isinstance(confidence, float) and 0 < confidence < 1):
        raise LthkitError(f"confidence must be a number in (0, 1), got {confidence!r}")
    values = _finite_values(values, "the values of an interval")
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(mean, -math.inf, math.inf, 1, confidence)
    sem = stats.sem(values)
    if sem == 0:
        return Interval(mean, mean, mean, n, confidence)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return Interval(mean, float(low), float(high), n, confidence)


def paired_differences(values: dict, references: dict) -> dict:
    """``values[trial] - references[trial]`` for every trial that has both, in trial order.

    Example:
        >>> paired_differences({0: 0.98, 1: 0.97, 2: 0.99}, {0: 0.97, 2: 0.98})
        {0: 0.01..., 2: 0.01...}
    """
    return {trial: values[trial] - references[trial] for trial in sorted(values) if trial in references}


def spread(values) -> float:
    """The sample standard deviation of ``values`` (``0.0`` for one value): the noise floor's measure.

    Example:
        >>> round(spread([97.8, 98.0, 98.2]), 3)
        0.2
    """
    values = _finite_values(values, "the values of a spread")
    if len(values) < 2:
        return 0.0
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (len(values) - 1))


@dataclass(frozen=True)
class Expectation:
    """What a claim says about one quantity, with the tolerance fixed before the run.

    Attributes:
        kind: ``"at_least"`` (the quantity is ``value`` or more), ``"at_most"`` (``value`` or less)
            or ``"near"`` (``value`` give or take the tolerance).
        value: the paper's number, in the quantity's units.
        tolerance: how far from ``value`` still agrees with the claim (``at_least``: down to
            ``value - tolerance``; ``at_most``: up to ``value + tolerance``; ``near``: either side).

    A claim that asserts a *difference* (its range leaves out zero, or has zero on its edge: "above
    dense", "at least +0.3") is also held to the study's noise floor (see :meth:`judge`); a claim whose
    range holds zero inside it ("within 0.2 points of dense") asserts no difference and is not.
    """

    kind: str
    value: float
    tolerance: float = 0.0

    def __post_init__(self):
        if self.kind not in EXPECTATION_KINDS:
            raise LthkitError(f"unknown expectation {self.kind!r}; choose one of {', '.join(EXPECTATION_KINDS)}")
        for name in ("value", "tolerance"):
            number = getattr(self, name)
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                raise LthkitError(f"an expectation's {name} must be a finite number, got {number!r}")
        if self.tolerance < 0:
            raise LthkitError(f"an expectation's tolerance must be 0 or more, got {self.tolerance!r}")

    def bounds(self) -> tuple[float, float]:
        """The range of the quantity that agrees with the claim.

        Example:
            >>> Expectation("near", 38, 15).bounds()
            (23, 53)
        """
        if self.kind == "at_least":
            return self.value - self.tolerance, math.inf
        if self.kind == "at_most":
            return -math.inf, self.value + self.tolerance
        return self.value - self.tolerance, self.value + self.tolerance

    def asserts_difference(self) -> bool:
        """Whether the claim says the quantity differs from zero (zero is not strictly inside its range).

        Example:
            >>> Expectation("at_least", 0.0).asserts_difference(), Expectation("at_least", 0.0, 0.2).asserts_difference()
            (True, False)
        """
        low, high = self.bounds()
        return not (low < 0 < high)

    def judge(self, interval: Interval, floor: float = 0.0) -> str:
        """The verdict on ``interval``: consistent, inconclusive or inconsistent.

        Args:
            interval: our estimate with its interval, in the expectation's units.
            floor: the study's noise floor in the same units; a claim that asserts a difference
                (:meth:`asserts_difference`) whose estimate is smaller than the floor in size is at
                best inconclusive.

        Example:
            >>> Expectation("near", 0.0, 0.2).judge(Interval(0.11, -0.05, 0.26, 5))
            'inconclusive'
            >>> Expectation("at_most", 0.0).judge(Interval(-0.8, -1.1, -0.5, 5))
            'consistent'
            >>> Expectation("at_most", 0.0).judge(Interval(0.2, 0.1, 0.3, 5))
            'inconsistent'
        """
        low, high = self.bounds()
        if interval.low >= low and interval.high <= high:
            verdict = CONSISTENT
        elif interval.high < low or interval.low > high:
            verdict = INCONSISTENT
        else:
            verdict = INCONCLUSIVE
        if verdict == CONSISTENT and self.asserts_difference() and abs(interval.estimate) < floor:
            verdict = INCONCLUSIVE
        return verdict

    def text(self, digits: int = 2, unit: str = "") -> str:
        """The expectation in words: ``"≥ 0.20"``, ``"≤ 0.00"``, ``"38 ± 15"``.

        Example:
            >>> Expectation("near", 38, 15).text(0, "%")
            '38% ± 15%'
        """
        if self.kind == "near":
            return f"{self.value:.{digits}f}{unit} ± {self.tolerance:.{digits}f}{unit}"
        low, high = self.bounds()
        return f"≥ {low:.{digits}f}{unit}" if self.kind == "at_least" else f"≤ {high:.{digits}f}{unit}"


def count_verdicts(verdicts) -> dict[str, int]:
    """``{verdict: how many}`` over the three verdicts (zeros included), in :data:`VERDICTS` order.

    Example:
        >>> count_verdicts(["consistent", "inconclusive", "consistent"])
        {'consistent': 2, 'inconclusive': 1, 'inconsistent': 0}
    """
    verdicts = list(verdicts)
    unknown = sorted(set(verdicts) - set(VERDICTS))
    if unknown:
        raise LthkitError(f"unknown verdict(s) {', '.join(map(repr, unknown))}; a verdict is one of "
                          f"{', '.join(VERDICTS)}")
    return {verdict: verdicts.count(verdict) for verdict in VERDICTS}


def headline(verdicts) -> str:
    """The count a report's first lines give: ``"3 consistent, 5 inconclusive, 0 inconsistent (of 8 claims)"``.

    Example:
        >>> headline(["consistent", "inconclusive"])
        '1 consistent, 1 inconclusive, 0 inconsistent (of 2 claims)'
    """
    counts = count_verdicts(verdicts)
    total = sum(counts.values())
    return ", ".join(f"{count} {verdict}" for verdict, count in counts.items()) + \
        f" (of {total} claim{'s' if total != 1 else ''})"
