"""argparse value types shared by every command, so a bad number reads the same everywhere."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date


def number(kind: type = int, *, minimum: float | None = None, maximum: float | None = None,
           above: float | None = None, what: str | None = None) -> Callable[[str], float]:
    """An argparse `type=` that parses `kind` and checks its bounds, with one clear message."""
    noun = what or ("a whole number" if kind is int else "a number")

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be {minimum} or more")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text} must be {maximum} or less")
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"{text} must be more than {above}")
        return value

    return parse


positive_int = number(int, minimum=1)
non_negative_int = number(int, minimum=0)
positive_float = number(float, above=0)
port_number = number(int, minimum=0, maximum=65535, what="a port number")


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-27") from None
