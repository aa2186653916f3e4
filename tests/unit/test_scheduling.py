"""The due-time queue: earliest first, earlier wins, stale entries never surface."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pai_operator.scheduling import DueQueue


def test_pops_only_what_is_due_in_due_order() -> None:
    q = DueQueue[str]()
    q.schedule("c", 30.0)
    q.schedule("a", 10.0)
    q.schedule("b", 20.0)
    assert q.next_due() == 10.0
    assert q.pop_due(5.0) == []
    assert q.pop_due(25.0) == ["a", "b"]
    assert q.pop_due(100.0) == ["c"]
    assert q.next_due() is None
    assert len(q) == 0


def test_equal_due_times_are_first_in_first_out() -> None:
    q = DueQueue[int]()
    for key in range(5):
        q.schedule(key, 1.0)
    assert q.pop_due(1.0) == [0, 1, 2, 3, 4]


def test_schedule_keeps_the_earlier_time_and_reschedule_replaces() -> None:
    q = DueQueue[str]()
    assert q.schedule("x", 50.0)
    assert not q.schedule("x", 60.0)  # a later resync never postpones a sooner retry
    assert q.due_at("x") == 50.0
    assert q.schedule("x", 5.0)  # a watch event makes it due now
    assert q.due_at("x") == 5.0
    q.reschedule("x", 80.0)  # after a pass: exactly the next due time
    assert q.due_at("x") == 80.0
    assert q.pop_due(79.0) == []
    assert q.pop_due(80.0) == ["x"]
    assert q.pop_due(1000.0) == []  # superseded entries never surface


def test_cancel_and_limit() -> None:
    q = DueQueue[str]()
    for key, at in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        q.schedule(key, at)
    q.cancel("b")
    assert "b" not in q
    assert q.pop_due(10.0, limit=1) == ["a"]
    assert q.pop_due(10.0) == ["c"]


def test_heap_stays_bounded_when_one_key_is_rescheduled_forever() -> None:
    q = DueQueue[str]()
    q.schedule("other", 1e9)
    for i in range(10_000):
        q.reschedule("retrying", float(i))
    assert len(q._heap) <= 4 * len(q) + 64  # superseded entries are compacted away


@given(st.lists(st.tuples(st.integers(0, 20), st.floats(0, 100), st.booleans()), max_size=60))
def test_matches_a_simple_model(ops: list[tuple[int, float, bool]]) -> None:
    q = DueQueue[int]()
    model: dict[int, float] = {}
    for key, at, replace in ops:
        if replace:
            q.reschedule(key, at)
            model[key] = at
        else:
            q.schedule(key, at)
            model[key] = min(model.get(key, at), at)
    popped = q.pop_due(50.0)
    assert sorted(popped) == sorted(key for key, at in model.items() if at <= 50.0)
    assert [model[k] for k in popped] == sorted(model[k] for k in popped)  # earliest first
    assert q.next_due() == (min((at for at in model.values() if at > 50.0), default=None))
