"""Which orders a comparing judge is shown, per item: seeded, and independent of sharding, batch size and cluster.

Every item has a seeded *base order* (permutation 0): the candidates in their item order with the first one swapped
into a random position, as the official RewardBench scripts present them ("the correct answer at a random position")
but seeded by (sweep seed, suite, item id). The official number uses permutation 0 only. The modes add orders:

    single     [base]
    both       [base, reversed base]                   (default for pairwise)
    cyclic     the n rotations of base, base first      (default for nway)
    all        base, then every other permutation      (n! orders; n <= 6)
    random:K   base, then K-1 further distinct orders drawn from the item's own generator

Each permutation index p is a separate unit of work in the plan (rmorch.orchestrator.plan.units), so orders shard across
replicas like anything else; result rows carry `order` and `permutation`.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import re
from dataclasses import dataclass

MODES = ("single", "both", "cyclic", "all")
MAX_ALL = 6
_RANDOM = re.compile(r"random:([1-9][0-9]*)")

Order = tuple[int, ...]


@dataclass(frozen=True)
class Permutations:
    mode: str  # single | both | cyclic | all | random
    k: int = 0  # random:K only

    @classmethod
    def parse(cls, text: str) -> Permutations:
        """Parse a spec value; raises ValueError with the accepted forms."""
        if text in MODES:
            return cls(text)
        m = _RANDOM.fullmatch(text)
        if m:
            return cls("random", int(m.group(1)))
        raise ValueError(f"'{text}' is not one of {', '.join(MODES)} or random:K (K >= 1)")

    def __str__(self) -> str:
        return f"random:{self.k}" if self.mode == "random" else self.mode

    def count(self, n: int) -> int:
        """How many orders an item with n candidates gets."""
        if self.mode == "single" or n < 2:
            return 1
        if self.mode == "both":
            return 2
        if self.mode == "cyclic":
            return n
        if self.mode == "all":
            if n > MAX_ALL:
                raise ValueError(f"permutations 'all' with {n} candidates is {math.factorial(n)} orders; "
                                 f"use random:K")
            return math.factorial(n)
        return min(self.k, math.factorial(n))

    def orders(self, n: int, seed: int, suite: str, item_id: str) -> list[Order]:
        """The presented orders of one item, permutation 0 (the base order) first."""
        rng = _item_rng(seed, suite, item_id)
        base = list(range(n))
        swap = rng.randrange(n)
        base[0], base[swap] = base[swap], base[0]
        first = tuple(base)
        if n < 2 or self.mode == "single":
            return [first]
        if self.mode == "both":
            return [first, first[::-1]]
        if self.mode == "cyclic":
            return [first[k:] + first[:k] for k in range(n)]
        if self.mode == "all":
            self.count(n)  # raises beyond MAX_ALL
            return [first] + [p for p in itertools.permutations(range(n)) if p != first]
        out, seen = [first], {first}
        target = self.count(n)
        while len(out) < target:
            p = list(range(n))
            rng.shuffle(p)
            t = tuple(p)
            if t not in seen:
                seen.add(t)
                out.append(t)
        return out


def _item_rng(seed: int, suite: str, item_id: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{suite}\x00{item_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def item_orders(protocol: str, permutations: str, n_candidates: int, rated: bool, seed: int, suite: str,
                item_id: str) -> list[Order] | None:
    """The orders in which a comparing kind is shown one item, or None when the item is scored pointwise (a
    pointwise kind, the rating protocol, or an item its suite always has rated, such as RewardBench 2 Ties)."""
    if protocol not in ("pairwise", "nway") or rated:
        return None
    return Permutations.parse(permutations).orders(n_candidates, seed, suite, item_id)
