"""Helpers shared by several test files (imported as ``from helpers import ...``; pytest puts tests/ on the path)."""


def strip_seconds(result) -> list[dict]:
    """A :class:`~lthkit.imp.driver.LotteryResult`'s rounds as dicts without the wall times, to compare two runs."""
    rounds = [r.to_dict() for r in result.rounds]
    for r in rounds:
        r["train"].pop("seconds")
    return rounds
