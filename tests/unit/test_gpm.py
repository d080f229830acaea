"""General Preference embedding Models (kind `gpm`) on a tiny real checkpoint in the published GPM layout: a causal-LM
checkpoint whose safetensors shards also hold `value_head.weight` (and `prompt_head.weight`). Checks exact
antisymmetry, scores against an independent plain-torch recomputation from the saved tensors, one embedding pass per
response, and a sweep through the pipeline with the judge metrics."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from rmorch.actors.base import ActorContext, CompareRequest, ScoreRequest
from rmorch.actors.gpm import NO_POINTWISE, Gpm, GpmConfig, preference_score
from rmorch.core.errors import SpecError, UserError

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_gpm.py
HIDDEN = 128  # build_tiny_causal_lm's default


def build_tiny_gpm(out: Path, base: Path, value_head_dim: int, prompt_head: bool, seed: int = 0) -> str:
    """A GPM checkpoint as the paper's code saves one: the base LM's tensors under `model.` plus `lm_head.weight` in
    shard 1, the heads in shard 2, a shard index, and a config naming the training class (CustomRewardModel)."""
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    for f in base.iterdir():
        if f.name not in ("model.safetensors", "config.json", "tiny-model.json"):
            shutil.copy(f, out / f.name)
    config = json.loads((base / "config.json").read_text())
    config["architectures"] = ["CustomRewardModel"]
    (out / "config.json").write_text(json.dumps(config, indent=2))
    lm = load_file(str(base / "model.safetensors"))
    lm["lm_head.weight"] = lm["model.embed_tokens.weight"].clone()
    gen = torch.Generator().manual_seed(seed)
    heads = {"value_head.weight": torch.randn(value_head_dim, HIDDEN, generator=gen)}
    if prompt_head:
        heads["prompt_head.weight"] = torch.randn(value_head_dim // 2, HIDDEN, generator=gen) * HIDDEN**-0.5
    shards = {"model-00001-of-00002.safetensors": lm, "model-00002-of-00002.safetensors": heads}
    for name, tensors in shards.items():
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / name), metadata={"format": "pt"})
    weight_map = {k: name for name, tensors in shards.items() for k in tensors}
    total = sum(v.numel() * v.element_size() for tensors in shards.values() for v in tensors.values())
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return str(out)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    from tests.tiny_models import build_tiny_causal_lm

    # varied: hidden states depend on the whole input, so embeddings differ between responses
    return Path(build_tiny_causal_lm(str(tmp_path_factory.mktemp("gpm-base") / "lm"), seed=0, varied=True))


@pytest.fixture(scope="module")
def tiny_gpm(tiny_lm, tmp_path_factory) -> str:
    return build_tiny_gpm(tmp_path_factory.mktemp("gpm") / "m", tiny_lm, value_head_dim=6, prompt_head=True)


@pytest.fixture(scope="module")
def tiny_gpm_2d(tiny_lm, tmp_path_factory) -> str:
    return build_tiny_gpm(tmp_path_factory.mktemp("gpm2") / "m", tiny_lm, value_head_dim=2, prompt_head=False)


@pytest.fixture(scope="module")
def gpm(tiny_gpm) -> Gpm:
    return Gpm(GpmConfig(path=tiny_gpm, dtype="float32"), ActorContext(seed=0, threads=2), "gpm")


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


REQUESTS = [
    CompareRequest("i", (0, 1), 0, _user("What is the capital of France?"), ("Paris.", "Lyon, I think.")),
    CompareRequest("j", (2, 0, 3, 1), 0, _user("How many legs does a spider have?"),
                   ("Six.", "A spider has eight legs.", "Ten legs.", "Eight, while an insect has six.")),
]


def _pair_matrix(scores: list[float], n: int) -> list[list[float]]:
    """`scores` (every ordered pair i != j, row-major) back into an n x n matrix with a zero diagonal."""
    it = iter(scores)
    return [[0.0 if i == j else next(it) for j in range(n)] for i in range(n)]


def _reference_scores(path: str, prompt: list[dict[str, str]], responses: tuple[str, ...], lam_from: int
                      ) -> list[list[float]]:
    """s(i, j) recomputed independently: the official input recipe (chat template, last token set to EOS), one
    unbatched forward each, heads from the safetensors files, and the dense skew-symmetric matrix of the paper."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
    heads = load_file(str(Path(path) / "model-00002-of-00002.safetensors"))
    w_value, w_prompt = heads["value_head.weight"], heads.get("prompt_head.weight")
    n_prompt = len(tok(tok.apply_chat_template(prompt, tokenize=False))["input_ids"])
    vs, prompt_states = [], []
    for r in responses:
        ids = tok(tok.apply_chat_template(prompt + [{"role": "assistant", "content": r}], tokenize=False))["input_ids"]
        ids[-1] = tok.eos_token_id
        with torch.no_grad():
            h = model(torch.tensor([ids])).last_hidden_state[0]
        vs.append(torch.nn.functional.normalize(w_value @ h[-1], dim=0).double())
        prompt_states.append(h[n_prompt - 1])
    dim = w_value.shape[0]
    lam = torch.softmax(w_prompt @ prompt_states[lam_from], dim=0) if w_prompt is not None else torch.ones(dim // 2)
    big_r = torch.zeros(dim, dim, dtype=torch.float64)
    for i in range(dim // 2):
        big_r[2 * i, 2 * i + 1], big_r[2 * i + 1, 2 * i] = -lam[i], lam[i]
    return [[float(vs[i] @ big_r.T @ vs[j]) for j in range(len(vs))] for i in range(len(vs))]


def test_scores_match_an_independent_recomputation(gpm, tiny_gpm):
    for r, o in zip(REQUESTS, gpm.score(REQUESTS)):
        n = len(r.responses)
        got = _pair_matrix(o.scores, n)
        want = _reference_scores(tiny_gpm, list(r.prompt), r.responses, lam_from=r.order.index(0))
        assert sum(got, []) == pytest.approx(sum(want, []), abs=1e-5)  # noqa: RUF017
        assert max(abs(x) for row in want for x in row) > 1e-3  # the check is not vacuous
        pref = [sum(1 / (1 + math.exp(-got[i][j] / 0.1)) for j in range(n) if j != i) / (n - 1) for i in range(n)]
        assert o.score == pytest.approx(pref[0]) and o.choice == pref.index(max(pref)) and o.parsed
        assert o.n_tokens == sum(len(x.ids) for x in gpm._inputs(r)) and o.truncated is False


def test_pairs_are_exactly_antisymmetric(gpm):
    reversed_pair = CompareRequest("i", (1, 0), 1, REQUESTS[0].prompt, REQUESTS[0].responses[::-1])
    first, many, back = gpm.score([REQUESTS[0], REQUESTS[1], reversed_pair])
    assert first.scores[1] == -first.scores[0] != 0.0  # s(b, a) == -s(a, b), bit for bit
    s = _pair_matrix(many.scores, 4)
    assert all(s[i][j] == -s[j][i] for i in range(4) for j in range(4))
    # the other order of the same pair: the same two numbers swapped, probabilities summing to one
    assert back.scores == first.scores[::-1] and back.score == pytest.approx(1 - first.score, abs=1e-15)
    assert back.choice == 1 - first.choice
    v = [0.6, -0.8, 0.0, 1.0]
    assert preference_score(v, [0.1, 0.2, 0.3, 0.4], [0.3, 0.7]) == -preference_score([0.1, 0.2, 0.3, 0.4], v,
                                                                                      [0.3, 0.7])


def test_each_response_is_embedded_once(gpm):
    """N candidates cost N forward sequences (not N^2 pairs); a response repeated anywhere in the call runs once."""
    rows: list[int] = []
    hook = gpm.encoder.register_forward_pre_hook(lambda m, a, kw: rows.append(kw["input_ids"].shape[0]),
                                                 with_kwargs=True)
    try:
        before = gpm.sequences_embedded
        prompt = _user("Tell me a joke.")
        reqs = [CompareRequest(f"k{k}", (0, 1, 2, 3), 0, prompt, tuple(f"joke {k} {c}" for c in "abcd"))
                for k in range(3)]
        reqs.append(CompareRequest("dup", (0, 1, 2), 0, prompt, ("joke 0 a", "joke 0 a", "joke 9 z")))
        outs = gpm.score(reqs)
    finally:
        hook.remove()
    distinct = 3 * 4 + 1  # "joke 0 a" is already in k0
    assert sum(rows) == distinct and gpm.sequences_embedded - before == distinct
    assert sum(len(o.scores) for o in outs) == 3 * 12 + 6  # every ordered pair scored, from those embeddings
    dup = _pair_matrix(outs[-1].scores, 3)
    assert dup[0][1] == 0.0 and dup[0][2] == dup[1][2]  # identical responses: no preference, the same vector


def test_identical_responses_tie_and_pointwise_requests_are_refused(gpm):
    tie, point = gpm.score([CompareRequest("t", (0, 1), 0, _user("Hi"), ("Hello!", "Hello!")),
                            ScoreRequest("p", 0, _user("Hi"), "Hello!")])
    assert tie.choice is None and tie.parsed is False and tie.score == 0.5 and tie.scores == [0.0, 0.0]
    assert point.error == NO_POINTWISE


def test_without_a_prompt_head_every_eigenvalue_is_one(tiny_gpm_2d):
    from safetensors.torch import load_file

    m = Gpm(GpmConfig(path=tiny_gpm_2d, dtype="float32"), ActorContext(seed=0, threads=2), "gpm2")
    assert m.prompt_head is None and m.embedding_dim == 2
    (o,) = m.score(REQUESTS[:1])
    want = _reference_scores(tiny_gpm_2d, list(REQUESTS[0].prompt), REQUESTS[0].responses, lam_from=0)
    assert sum(_pair_matrix(o.scores, 2), []) == pytest.approx(sum(want, []), abs=1e-5)  # noqa: RUF017
    assert "prompt_head.weight" not in load_file(str(Path(tiny_gpm_2d) / "model-00002-of-00002.safetensors"))


def test_config_is_checked_against_the_checkpoint(tiny_gpm, tiny_gpm_2d, tiny_lm):
    ctx = ActorContext(seed=0, threads=2)
    with pytest.raises(UserError, match="value_head_dim is 4 .* has 6 outputs"):
        Gpm(GpmConfig(path=tiny_gpm, value_head_dim=4), ctx, "g")
    with pytest.raises(UserError, match="no 'prompt_head.weight'"):
        Gpm(GpmConfig(path=tiny_gpm_2d, prompt_head=True), ctx, "g")
    with pytest.raises(UserError, match="not a GPM checkpoint"):
        Gpm(GpmConfig(path=str(tiny_lm)), ctx, "g")
    ignored = Gpm(GpmConfig(path=tiny_gpm, prompt_head=False, dtype="float32"), ctx, "g")
    assert ignored.prompt_head is None  # lambda = 1 although the checkpoint has a prompt head
    for bad, key in (({"tau": 0.0}, "tau"), ({"value_head_dim": 3}, "value_head_dim"),
                     ({"max_length": 9000}, "batch_tokens")):
        with pytest.raises(SpecError, match=key):
            GpmConfig(path="x", **bad)
