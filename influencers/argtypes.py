"""argparse value types shared by every command, so a bad number reads the same everywhere,
and a parser whose usage errors are one line like every other failure."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from datetime import date
from typing import NoReturn

#: The longest wait a command accepts (`--poll-interval`, `--interval`): a day; longer ones
#: overflow the clock functions (`inf` did) and no operator means them.
MAX_SECONDS = 86_400.0


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit 2 (no usage block:
    `--help` shows it), as every other failure of the project's commands is. Its subcommands'
    parsers are of the same class (argparse builds them with the parent's class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def number(kind: type = int, *, minimum: float | None = None, maximum: float | None = None,
           above: float | None = None, what: str | None = None) -> Callable[[str], float]:
    """An argparse `type=` that parses `kind` and checks its bounds, with one clear message."""
    noun = what or ("a whole number" if kind is int else "a number")

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if isinstance(value, float) and not math.isfinite(value):  # float("inf"), float("nan") parse
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be {minimum:g} or more")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text} must be {maximum:g} or less")
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"{text} must be more than {above:g}")
        return value

    return parse


positive_int = number(int, minimum=1)
non_negative_int = number(int, minimum=0)
positive_float = number(float, above=0)
port_number = number(int, minimum=0, maximum=65535, what="a port number")
seconds = number(float, above=0, maximum=MAX_SECONDS, what="a number of seconds")


def utf8_text(value: str) -> str:
    """Free text from the command line that MySQL and the terminal can take: a byte that is not
    UTF-8 reaches Python as a lone surrogate (`$'\\xff'` in bash) and is refused here."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"{ascii(value)} is not valid UTF-8 text") from None
    return value


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-27") from None
