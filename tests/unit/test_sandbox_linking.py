"""The account-linking rule of the reference platform (sandbox.linking), on a fake clock."""
from __future__ import annotations

import pytest

from sandbox.linking import MAX_ENTRIES, MAX_USER_AGENT, Link, Linker

WINDOW = 300.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def linker(clock: Clock) -> Linker:
    return Linker(clock)


def test_one_account_may_use_many_addresses_and_user_agents(linker):
    for i in range(5):
        assert linker.observe("a", f"127.0.0.{i + 1}", f"UA{i}", WINDOW) is None
    seen = linker.seen("a", WINDOW)
    assert seen["addresses"] == [f"127.0.0.{i + 1}" for i in range(5)]
    assert seen["user_agents"] == [f"UA{i}" for i in range(5)]


def test_the_later_account_on_a_shared_address_is_linked_and_not_recorded(linker):
    assert linker.observe("a", "127.0.0.1", "UA-a", WINDOW) is None
    assert linker.observe("b", "127.0.0.1", "UA-b", WINDOW) == Link(("a",), ("address",))
    assert linker.seen("b", WINDOW) == {"addresses": [], "user_agents": []}
    assert linker.observe("a", "127.0.0.1", "UA-a", WINDOW) is None  # a goes on


def test_a_shared_user_agent_links_from_another_address(linker):
    assert linker.observe("a", "127.0.0.2", "Mozilla/5.0 X", WINDOW) is None
    assert linker.observe("b", "127.0.0.3", "Mozilla/5.0 X", WINDOW) == Link(("a",), ("user_agent",))


def test_every_account_shared_with_is_named_sorted(linker):
    assert linker.observe("c", "127.0.0.2", "UA-c", WINDOW) is None
    assert linker.observe("a", "127.0.0.3", "UA-a", WINDOW) is None
    assert linker.observe("b", "127.0.0.2", "UA-a", WINDOW) == Link(("a", "c"), ("address", "user_agent"))


def test_distinct_identities_never_link(linker):
    for i, account in enumerate(("a", "b", "c")):
        assert linker.observe(account, f"127.0.0.{i + 2}", f"UA-{account}", WINDOW) is None
        assert linker.observe(account, f"127.0.0.{i + 2}", f"UA-{account}", WINDOW) is None


def test_an_absent_or_empty_user_agent_is_no_identity(linker):
    assert linker.observe("a", "127.0.0.2", None, WINDOW) is None
    assert linker.observe("b", "127.0.0.3", "", WINDOW) is None
    assert linker.observe("c", "127.0.0.4", None, WINDOW) is None
    assert linker.seen("a", WINDOW) == {"addresses": ["127.0.0.2"], "user_agents": []}


def test_an_entry_expires_a_window_after_its_last_use(linker, clock):
    linker.observe("a", "127.0.0.1", "UA", WINDOW)
    clock.now += WINDOW - 1
    linker.observe("a", "127.0.0.1", "UA", WINDOW)  # refreshed
    clock.now += WINDOW - 1
    assert linker.observe("b", "127.0.0.1", None, WINDOW) == Link(("a",), ("address",))
    clock.now += 1
    assert linker.seen("a", WINDOW) == {"addresses": [], "user_agents": []}
    assert linker.observe("b", "127.0.0.1", "UA", WINDOW) is None
    assert linker.seen("b", WINDOW) == {"addresses": ["127.0.0.1"], "user_agents": ["UA"]}


def test_the_window_in_force_at_lookup_time_counts(linker, clock):
    linker.observe("a", "127.0.0.1", None, WINDOW)
    clock.now += 10
    assert linker.observe("b", "127.0.0.1", None, 5.0) is None  # shortened: a's entry is stale
    assert linker.observe("c", "127.0.0.1", None, WINDOW) == Link(("a", "b"), ("address",))


def test_entries_per_account_are_bounded_oldest_first(linker, clock):
    for i in range(MAX_ENTRIES + 10):
        clock.now += 0.001
        linker.observe("a", f"10.0.{i // 256}.{i % 256}", f"UA{i}", WINDOW)
    seen = linker.seen("a", WINDOW)
    assert len(seen["addresses"]) == len(seen["user_agents"]) == MAX_ENTRIES
    assert seen["addresses"][0] == "10.0.0.10"
    long_agent = "x" * (MAX_USER_AGENT + 100)
    linker.observe("b", "127.0.0.9", long_agent, WINDOW)
    assert linker.seen("b", WINDOW)["user_agents"] == ["x" * MAX_USER_AGENT]


def test_reset_forgets_everything(linker):
    linker.observe("a", "127.0.0.1", "UA", WINDOW)
    linker.reset()
    assert linker.observe("b", "127.0.0.1", "UA", WINDOW) is None
    assert linker.seen("a", WINDOW) == {"addresses": [], "user_agents": []}
