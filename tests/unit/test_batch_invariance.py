"""Scores do not depend on batch size or order (transformers backends): the same requests scored 1, 7 or 64 at a
time, in the data's order and shuffled, give the same numbers.

Documented tolerance: 1e-6 (in practice bit-identical): every sequence is padded to a width that depends on its own
length only (rmorch.actors.backends.text.padded_width), batches hold one width, and every forward pass has the same
number of rows (rows_per_pass). Without that, SmolLM2-135M in bf16
moved by up to 0.049 logit between batch sizes on these very requests (measured; see README "Throughput").
"""

from __future__ import annotations

from rmorch.actors.backends import text
from rmorch.actors.backends.text import padded_width, pass_tensors, rows_per_pass, width_batches

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_batch_invariance.py


def test_padded_width_depends_on_the_length_alone():
    assert [padded_width(n) for n in (1, 15, 16, 17, 31, 32)] == [16, 16, 32, 32, 32, 48]
    assert padded_width(510, limit=512) == 512 and padded_width(512, limit=512) == 512
    lengths = [5, 40, 33, 47, 3, 100]
    batches = width_batches(lengths, budget=100)
    assert [w for w, _ in batches] == sorted((w for w, _ in batches), reverse=True)  # widest first
    assert sorted(i for _, b in batches for i in b) == list(range(6))
    assert all(padded_width(lengths[i]) == w and len(b) <= rows_per_pass(w, 100) for w, b in batches for i in b)
    assert all(w * len(b) <= 100 or len(b) == 1 for w, b in batches)


def test_passes_have_a_fixed_number_of_rows(monkeypatch):
    """Every pass of a width has the same rows: sequences of one width in chunks of rows_per_pass, a short chunk
    filled up with masked rows (one attended pad token each)."""
    monkeypatch.setattr(text, "ROWS_PER_PASS", 8)
    assert width_batches([5, 40, 33, 47, 3, 100], budget=100) == [(112, [5]), (48, [1, 2]), (48, [3]), (16, [0, 4])]
    assert rows_per_pass(48, 100) == 2 and rows_per_pass(16, 100) == 6 and rows_per_pass(112, 100) == 1
    ids, mask = pass_tensors([[7, 8, 9]], width=16, rows=rows_per_pass(16, 100), pad=0)
    assert tuple(ids.shape) == (6, 16) and ids[0, :3].tolist() == [7, 8, 9] and mask[0].sum() == 3
    assert mask[1:].sum(dim=1).tolist() == [1] * 5  # filler rows: masked but for one position
