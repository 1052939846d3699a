"""Config fields: type checks with one-line errors, and the metadata the CLI builds flags from.

Every field of the config dataclasses (:class:`~lthkit.core.train.TrainConfig`,
:class:`~lthkit.core.data.DataConfig`, :class:`~lthkit.imp.config.LotteryConfig`) is declared as
``field(default=..., metadata={"help": ...})``. The ``help`` line documents the field twice: in
the class docstring's ``Attributes`` section (written by :func:`document_fields`) and as the
help of the field's ``--flag`` (:func:`lthkit.cli.common.add_dataclass_flags`). The other keys are read
only by the CLI:

* ``doc``: more sentences for the docstring only;
* ``flag``: the flag's name when it is not ``--field-name``; ``cli``: ``False`` for no flag;
* ``parse``: the function that reads the flag's text (default: from the field's type);
* ``choices``, ``metavar``: as for :meth:`argparse.ArgumentParser.add_argument`;
* ``repeat``: the flag may be given several times, each giving one item;
* ``exclusive``: flags with the same name here are mutually exclusive;
* ``replaces``: giving this flag (and not that one) sets the named field to ``None``, as
  ``--epochs`` does with the preset's ``iterations``.

One key is read by :func:`config_dict`: ``omit_default``: the field is left out of the config's
dict (hence of its hash and cache key) while it holds its default, so that a field added later
with a default that changes nothing leaves every existing key as it was.

The ``check_*`` functions validate a field's value at construction and raise a one-line
:class:`~lthkit.LthkitError` that names the field.

Example:
    >>> check_int(3, "rounds", minimum=1)
    3
    >>> check_int(True, "batch_size", minimum=1)
    Traceback (most recent call last):
    ...
    lthkit.LthkitError: batch_size must be a positive integer, got True
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import numbers

from ..errors import LthkitError

#: Seeds are 64-bit: torch.Generator.manual_seed accepts nothing larger.
SEED_LIMIT = 2 ** 64


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(value, name: str, *, minimum: int | None = None, limit: int | None = None,
              optional: bool = False) -> int | None:
    """Return ``value`` as an ``int`` if it is an integer (not a bool) in ``[minimum, limit)``.

    Args:
        value: the value to check.
        name: the field's name, for the message.
        minimum: the smallest value allowed (``None``: no bound).
        limit: the first value not allowed (``None``: no bound).
        optional: ``None`` is allowed (and returned).

    Raises:
        LthkitError: naming ``name`` and the value.
    """
    if optional and value is None:
        return None
    if limit is not None:
        what = f"an integer in [{minimum}, {'2**64' if limit == SEED_LIMIT else limit})"
    else:
        what = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer of at least {minimum}")
    what += " or None" if optional else ""
    if not _is_int(value) or (minimum is not None and value < minimum) or (limit is not None and value >= limit):
        raise LthkitError(f"{name} must be {what}, got {value!r}")
    return int(value)


def check_number(value, name: str, *, positive: bool = False, optional: bool = False) -> float | None:
    """Return ``value`` as a ``float`` if it is a finite real number, non-negative (or ``positive``).

    Raises:
        LthkitError: naming ``name`` and the value.
    """
    if optional and value is None:
        return None
    what = ("a positive number" if positive else "a non-negative number") + (" or None" if optional else "")
    if not _is_number(value) or not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise LthkitError(f"{name} must be {what}, got {value!r}")
    return float(value)


def check_fraction(value, name: str) -> float:
    """Return ``value`` as a float if it is a number in [0, 1), else raise a one-line :class:`LthkitError`."""
    try:  # a number of any kind (a 0-dim tensor too), but not text or a bool
        if isinstance(value, (str, bytes, bool)):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise LthkitError(f"{name} must be a number in [0, 1), got {value!r}") from None
    if math.isnan(number) or not 0.0 <= number < 1.0:
        raise LthkitError(f"{name} must be in [0, 1), got {value!r}")
    return number


def check_choice(value, name: str, choices, *, what: str | None = None) -> str:
    """Return ``value`` if it is one of ``choices`` (strings), else a one-line :class:`LthkitError`.

    ``what`` words the message as ``unknown {what} 'x'`` (default: ``{name} must be one of ...``).
    """
    if not isinstance(value, str) or value not in choices:
        if what is not None:
            raise LthkitError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
        raise LthkitError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def check_bool(value, name: str) -> bool:
    """Return ``value`` if it is ``True`` or ``False``, else a one-line :class:`LthkitError`."""
    if not isinstance(value, bool):
        raise LthkitError(f"{name} must be True or False, got {value!r}")
    return value


def set_fields(instance, **values) -> None:
    """Store normalized values on a frozen dataclass instance (from its ``__post_init__``)."""
    for name, value in values.items():
        object.__setattr__(instance, name, value)


def nested_config(value, cls, name: str):
    """``value`` as an instance of the config dataclass ``cls``: as is, or built from a dict of its fields.

    Raises:
        LthkitError: ``value`` is neither, or the dict names a field ``cls`` does not have.
    """
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = [key for key in value if key not in known]
        if unknown:
            raise LthkitError(f"{name} has no field {', '.join(map(repr, unknown))}; its fields are {', '.join(known)}")
        return cls(**value)
    raise LthkitError(f"{name} must be a {cls.__name__} or a dict of its fields, got {type(value).__name__}")


def config_dict(instance) -> dict:
    """``dataclasses.asdict(instance)`` without the ``omit_default`` fields that hold their default.

    Example:
        >>> from lthkit.core.train import TrainConfig
        >>> "lr_milestones" in config_dict(TrainConfig()), config_dict(TrainConfig(lr_milestones=(5,)))["lr_milestones"]
        (False, (5,))
    """
    data = dataclasses.asdict(instance)
    for field in dataclasses.fields(instance):
        if field.metadata.get("omit_default") and getattr(instance, field.name) == field.default:
            del data[field.name]
    return data


def field_help(field: dataclasses.Field) -> str:
    """A field's one-line help (its ``metadata["help"]``; the field's name if it has none)."""
    return field.metadata.get("help", field.name.replace("_", " "))


def document_fields(cls):
    """Class decorator: append an ``Attributes`` section, written from the fields' metadata, to the docstring."""
    lines = ["", "    Attributes:"]
    for field in dataclasses.fields(cls):
        text = field_help(field)
        extra = field.metadata.get("doc")
        lines.append(f"        {field.name}: {text}." + (f" {extra}" if extra else ""))
    cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n" + "\n".join(lines) + "\n"
    return cls


# --- reading flag text (argparse ``type=`` functions; their errors name the flag, never the function) --

def parse_positive(kind):
    """A flag parser for ``kind`` (``int`` or ``float``) values above zero."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if not value > 0 or not math.isfinite(value):  # also refuses NaN and infinity
            raise argparse.ArgumentTypeError(f"must be {'at least 1' if kind is int else 'a positive number'}, "
                                             f"got {text}")
        return value
    return parse


def parse_fraction(text: str) -> float:
    """A flag parser for numbers in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if math.isnan(value) or not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def parse_layer_rate(text: str) -> tuple[str, float]:
    """A flag parser for ``NAME=RATE`` (a layer's name and its rate in [0, 1))."""
    name, sep, rate = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=RATE, got {text!r}")
    return name, parse_fraction(rate)
