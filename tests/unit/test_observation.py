"""When one list of a group is worth its pages (the core of batched observation)."""

from pai_operator.observation import list_is_cheaper, pages_for


def test_list_only_when_cheaper_than_one_get_each() -> None:
    assert pages_for(0, 100) == 1
    assert pages_for(100, 100) == 1
    assert pages_for(101, 100) == 2
    assert not list_is_cheaper(1, None, 100)  # one object: one GET
    assert list_is_cheaper(2, None, 100)  # first time: one page assumed
    assert list_is_cheaper(20, 1500, 100)  # 15 pages for 20 objects
    assert not list_is_cheaper(3, 1500, 100)  # 15 pages for 3 objects: GETs
