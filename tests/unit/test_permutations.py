"""Presented orders: seeded per item, independent of everything else, and the right sets per mode."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest

from rmorch.core.permutations import Permutations, item_orders


@pytest.mark.parametrize("text", ["single", "both", "cyclic", "all", "random:1", "random:7"])
def test_parse_round_trips(text):
    assert str(Permutations.parse(text)) == text


@pytest.mark.parametrize("text", ["", "Both", "random", "random:0", "random:-1", "random:x", "cyclic "])
def test_parse_rejects(text):
    with pytest.raises(ValueError, match="random:K"):
        Permutations.parse(text)


@pytest.mark.parametrize("mode", ["single", "both", "cyclic", "all", "random:3", "random:100"])
@pytest.mark.parametrize("n", [2, 3, 4])
def test_orders_are_distinct_permutations_base_first(mode, n):
    perms = Permutations.parse(mode)
    orders = perms.orders(n, seed=0, suite="s", item_id="item-1")
    assert len(orders) == perms.count(n)
    assert len(set(orders)) == len(orders)
    assert all(sorted(o) == list(range(n)) for o in orders)
    assert orders[0] == Permutations.parse("single").orders(n, 0, "s", "item-1")[0]  # the official order


def test_mode_contents():
    base = Permutations.parse("single").orders(4, 3, "s", "x")[0]
    assert Permutations.parse("both").orders(4, 3, "s", "x") == [base, base[::-1]]
    assert Permutations.parse("cyclic").orders(4, 3, "s", "x") == [base[k:] + base[:k] for k in range(4)]
    assert set(Permutations.parse("all").orders(4, 3, "s", "x")) == set(itertools.permutations(range(4)))
    assert Permutations.parse("random:1000").count(4) == math.factorial(4)
    with pytest.raises(ValueError, match="random:K"):
        Permutations.parse("all").count(7)


def test_cyclic_shows_every_candidate_in_every_position():
    orders = Permutations.parse("cyclic").orders(4, 0, "s", "x")
    for pos in range(4):
        assert sorted(o[pos] for o in orders) == [0, 1, 2, 3]


def test_orders_depend_only_on_seed_suite_item():
    p = Permutations.parse("random:5")
    a = p.orders(4, 1, "suite", "id")
    assert p.orders(4, 1, "suite", "id") == a
    others = [p.orders(4, s, "suite", "id") for s in range(2, 12)]
    assert any(o != a for o in others)


def test_base_order_puts_the_first_candidate_at_a_uniform_position():
    """As the official scripts (correct answer swapped into a random slot), but seeded per item."""
    for n in (2, 4):
        counts = Counter(Permutations.parse("single").orders(n, 0, "s", f"i{k}")[0].index(0) for k in range(4000))
        assert set(counts) == set(range(n))
        for c in counts.values():
            assert abs(c / 4000 - 1 / n) < 0.03


def test_item_orders_rated_and_pointwise_items_have_none():
    assert item_orders("pointwise", "single", 2, False, 0, "s", "x") is None
    assert item_orders("rating", "single", 4, False, 0, "s", "x") is None
    assert item_orders("nway", "cyclic", 6, True, 0, "s", "x") is None  # e.g. RewardBench 2 Ties
    assert len(item_orders("pairwise", "both", 2, False, 0, "s", "x")) == 2
