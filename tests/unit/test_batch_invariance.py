"""Scores do not depend on batch size or order (transformers backends): the same requests scored 1, 7 or 64 at a
time, in the data's order and shuffled, give the same numbers.

Documented tolerance: 1e-6 (in practice bit-identical): every sequence is padded to a width that depends on its own
length only (rmorch.actors.backends.text.padded_width), and batches hold one width. Without that, SmolLM2-135M in bf16
moved by up to 0.049 logit between batch sizes on these very requests (measured; see README "Throughput").
"""

from __future__ import annotations

from rmorch.actors.backends.text import padded_width, width_batches

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_batch_invariance.py


def test_padded_width_depends_on_the_length_alone():
    assert [padded_width(n) for n in (1, 15, 16, 17, 31, 32)] == [16, 16, 32, 32, 32, 48]
    assert padded_width(510, limit=512) == 512 and padded_width(512, limit=512) == 512
    batches = width_batches([5, 40, 33, 47, 3, 100], budget=100)
    assert batches == [(112, [5]), (48, [1, 2, 3]), (16, [0, 4])] or batches == [(112, [5]), (48, [1, 2]), (48, [3]),
                                                                                  (16, [0, 4])]
    assert sorted(i for _, b in batches for i in b) == list(range(6))
    assert all(w * len(b) <= 100 or len(b) == 1 for w, b in batches)
