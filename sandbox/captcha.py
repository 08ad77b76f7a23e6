"""Captchas a client can solve (the ``captcha_solvable`` knob): per-account arithmetic challenges.

With the knob off a captcha is a one-off fate of a single listing request (``Guard.roll``). With
it on, that fate *challenges the account*: every later listing request of the account, in
either API style, is answered with the captcha until the account solves it; its session stays
valid. The captcha answer carries the account's current question as ``{"id", "question"}``
(``Challenge.to_json``), e.g. ``{"id": "9f0c…", "question": "3 + 4"}``, answered by
``POST /captcha`` (``sandbox.app``) or ``POST /api/v2/verify`` (``sandbox.api_v2``).

Questions are a pure function of ``(seed, username, n)``, ``n`` counting the questions issued
to that account since start (or ``/__admin/reset``), so a test sees the same ids and questions
on every run. An account keeps its question, however often it is shown, until it is answered:
the right answer lifts the challenge; a wrong answer to it retires it, and the account, still
challenged, is shown a new one (so a question cannot be brute-forced). An unknown or retired id
is refused without touching the current question.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Challenge:
    id: str
    left: int
    right: int

    @property
    def question(self) -> str:
        return f"{self.left} + {self.right}"

    @property
    def answer(self) -> int:
        return self.left + self.right

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "question": self.question}


def make_challenge(seed: int, username: str, n: int) -> Challenge:
    """The ``n``-th question (1-based) issued to ``username``: two numbers from 1 to 9."""
    digest = hashlib.sha256(f"captcha\x1f{seed}\x1f{username}\x1f{n}".encode()).digest()
    return Challenge(id=digest[2:10].hex(), left=1 + digest[0] % 9, right=1 + digest[1] % 9)


def parse_answer(value: object) -> int | None:
    """An answer as sent: a JSON integer or a string of decimal digits; anything else is None
    (and so a wrong answer)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        raw = value.strip()
        digits = raw[1:] if raw.startswith("-") else raw
        if digits.isascii() and digits.isdigit() and len(digits) <= 9:
            return int(raw)
    return None


@dataclass
class _AccountState:
    issued: int = 0  # questions issued so far; the next one is make_challenge(..., issued + 1)
    challenged: bool = False
    current: Challenge | None = None  # None while challenged: a new one is issued when shown


class Challenges:
    """Which accounts are challenged, and the question each one is shown."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._accounts: dict[str, _AccountState] = {}

    def reset(self) -> None:
        """Forget everything, the question counters included: behave like a fresh start."""
        self._accounts.clear()

    def release_all(self) -> None:
        """Lift every challenge (the knob was switched off); counters are kept, so an id issued
        before stays unknown."""
        for state in self._accounts.values():
            state.challenged, state.current = False, None

    def is_challenged(self, username: str) -> bool:
        state = self._accounts.get(username)
        return state is not None and state.challenged

    def show(self, username: str) -> Challenge:
        """Challenge ``username`` (if it is not already) and return the question it is shown."""
        state = self._accounts.setdefault(username, _AccountState())
        state.challenged = True
        if state.current is None:
            state.issued += 1
            state.current = make_challenge(self._seed, username, state.issued)
        return state.current

    def solve(self, username: str, challenge_id: object, answer: int | None) -> bool:
        """True when ``answer`` is right for the account's current question, which lifts the
        challenge. A wrong answer to the current question retires it; an unknown or old id
        changes nothing."""
        state = self._accounts.get(username)
        if state is None or state.current is None or challenge_id != state.current.id:
            return False
        current, state.current = state.current, None
        if answer != current.answer:
            return False
        state.challenged = False
        return True
