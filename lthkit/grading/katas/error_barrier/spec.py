"""Kata 5: ``error_barrier(errors) -> float``.

The instability of a linear path (notebook 6): given the errors along it at evenly spaced α, the
endpoints first and last, return the highest error minus the mean of the two endpoints' errors
(reference: ``lthkit.grading.katas.error_barrier.reference``); leave the list alone.

The hidden cases are paths of several shapes and lengths: a bump between equal endpoints, a bump
between unequal ones, a path that only climbs (its maximum is an endpoint), a flat path (a
network with itself: 0), and the two-point path of the endpoints alone.
"""

from __future__ import annotations

import math

import torch

from ...spec import PASS, Case, Check, KataSpec, Mistake, fail
from ..common import example_case, inputs_unchanged
from .run import call, run

NAME = "error_barrier"

MISTAKES = (
    Mistake("returns_wrong_type",
            "Return one number (a float), the barrier: max(errors) - (errors[0] + errors[-1]) / 2."),
    Mistake("min_endpoint",
            "The barrier was measured from the better (lower) endpoint. The paper measures it from the mean of "
            "the two endpoints: max(errors) - (errors[0] + errors[-1]) / 2."),
    Mistake("max_endpoint",
            "The barrier was measured from the worse (higher) endpoint. Use the mean of the two endpoints: "
            "(errors[0] + errors[-1]) / 2."),
    Mistake("middle_only",
            "Only the middle of the path (α = 0.5) was looked at. The barrier is the highest error anywhere along "
            "the path: max(errors)."),
    Mistake("interior_only",
            "The maximum was taken over the inner points only, leaving the endpoints out. Take it over the whole "
            "list: max(errors), so a path that only climbs scores half its rise."),
    Mistake("mutates_inputs",
            "The list of errors was changed (sorted or overwritten in place). Only read it: max(errors) and "
            "errors[0], errors[-1] need no sorting."),
)


def _path(kind: str, points: int) -> list[float]:
    alphas = [i / (points - 1) for i in range(points)]
    if kind == "bump":
        return [0.02 + 0.30 * math.sin(math.pi * a) ** 2 for a in alphas]
    if kind == "uneven":
        return [0.03 + 0.03 * a + 0.12 * math.sin(math.pi * a) ** 4 for a in alphas]
    if kind == "climbs":
        return [0.05 + 0.10 * a ** 2 for a in alphas]
    if kind == "flat":
        return [0.0183] * points
    return [0.04, 0.07]  # "ends": the endpoints only


CASES = (Case("path", 41, 21, "a bump between equal endpoints, 21 points", about="-"),
         Case("path", 42, 21, "a bump between unequal endpoints, 21 points", about="-"),
         Case("path", 43, 11, "a path that only climbs, 11 points", about="-"),
         Case("path", 44, 21, "a flat path (a network with itself), 21 points", about="-"),
         Case("path", 45, 2, "the two endpoints only", about="-"),
         Case("path", 46, 30, "a bump between unequal endpoints, 30 points", about="-"))
_KINDS = {41: "bump", 42: "uneven", 43: "climbs", 44: "flat", 45: "ends", 46: "uneven"}


def prepare(case: Case) -> dict:
    return {"errors": {"errors": torch.tensor(_path(_KINDS[case.seed], int(case.amount)), dtype=torch.float64)}}


def example(arguments: dict) -> tuple[Case, dict]:
    """A notebook's call ``error_barrier(errors)`` as a case."""
    errors = [float(error) for error in arguments["errors"]]
    return (example_case(0.0, f"errors {errors[:3]}{' ...' if len(errors) > 3 else ''}"),
            {"errors": {"errors": torch.tensor(errors, dtype=torch.float64)}})


class Evidence:
    def __init__(self, case: Case, inputs: dict, outputs: dict, error: dict | None):
        self.case, self.inputs, self.outputs, self.error = case, inputs, outputs, error
        self.errors = inputs["errors"]["errors"].tolist()
        self.finished = "returned" in outputs

    def oracle(self) -> float:
        return max(self.errors) - (self.errors[0] + self.errors[-1]) / 2

    def predictions(self) -> dict[str, float]:
        e = self.errors
        inner = e[1:-1] or e
        return {"min_endpoint": max(e) - min(e[0], e[-1]), "max_endpoint": max(e) - max(e[0], e[-1]),
                "middle_only": e[len(e) // 2] - (e[0] + e[-1]) / 2 if len(e) > 2 else math.nan,
                "interior_only": max(inner) - (e[0] + e[-1]) / 2 if len(e) > 2 else math.nan}


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 + 1e-6 * abs(b)


def judge_returns_number(ev: Evidence):
    if not ev.finished:
        return None
    if ev.outputs.get("returned") is None:
        return fail(f"returned {ev.outputs.get('returned_type')}, not a number", "returns_wrong_type")
    return PASS


def judge_barrier(ev: Evidence):
    if not ev.finished or ev.outputs.get("returned") is None:
        return None
    value, expected = ev.outputs["returned"], ev.oracle()
    if _same(value, expected):
        return PASS
    messages = {"min_endpoint": "the barrier was taken against the lower endpoint",
                "max_endpoint": "the barrier was taken against the higher endpoint",
                "middle_only": "the barrier is the middle point's error above the endpoints, not the highest's",
                "interior_only": "the highest error was looked for among the inner points only"}
    for mistake, prediction in ev.predictions().items():
        if _same(value, prediction) and not _same(prediction, expected):
            return fail(f"{messages[mistake]}: {value:.6g} instead of {expected:.6g}", mistake)
    return fail(f"returned {value:.6g}; the highest error minus the mean of the endpoints is {expected:.6g}")


def judge_flat_is_zero(ev: Evidence):
    if not ev.finished or ev.outputs.get("returned") is None:
        return None
    if len(set(ev.errors)) != 1:
        return PASS  # judged on the flat path only
    value = ev.outputs["returned"]
    return PASS if _same(value, 0.0) else fail(f"a flat path (a network with itself) gave {value:.6g}, not 0")


def judge_inputs_unchanged(ev: Evidence):
    if not ev.finished:
        return None
    return inputs_unchanged((("errors", "errors"),), ev.inputs, ev.outputs, "mutates_inputs")


SPEC = KataSpec(
    name=NAME,
    title="error_barrier: the highest error along the path minus the mean of its endpoints",
    cases=CASES,
    mistakes=MISTAKES,
    prepare=prepare,
    run=run,
    context=Evidence,
    example=example,
    call=call,
    checks=(
        Check("returns_number", "returns one number", 1, "Return a float.", judge_returns_number,
              mistakes=("returns_wrong_type",)),
        Check("barrier", "max(errors) − the mean of the two endpoints, on every path", 3,
              "max(errors) - (errors[0] + errors[-1]) / 2.", judge_barrier,
              mistakes=("min_endpoint", "max_endpoint", "middle_only", "interior_only")),
        Check("flat_is_zero", "a flat path (a network with itself) has barrier 0", 1,
              "On a flat path the maximum equals both endpoints.", judge_flat_is_zero),
        Check("inputs_unchanged", "leaves the list of errors unchanged", 1, "Only read errors.",
              judge_inputs_unchanged, mistakes=("mutates_inputs",)),
    ),
)
