"""VL-RewardBench: loader on the real local rows (no images), the `images` option with generated PNGs, a bad row,
hand-computed metric cases, and the `length` baseline through the pipeline checked against an independent
computation written here from the official cal.py rules (no rmorch code)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from rmorch.core.errors import DataError
from rmorch.core.schema import results_table
from rmorch.suites.vlrewardbench import VLRewardBench, VLRewardBenchOptions

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_vlrewardbench.py
DATA = "/work/shared/data/vl-rewardbench"
ROWS_FILE = DATA + "/data.jsonl"
SOURCES = {"povid": 448, "reasoning_tasks": 318, "rlaif-v": 233, "wildvision-battle": 173, "rlhf-v": 68,
           "vlfeedback": 10}


@pytest.fixture(scope="module")
def rows():
    with open(ROWS_FILE, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def items():
    return VLRewardBench().load(DATA)


def test_real_rows_load(items, rows):
    assert items.num_rows == 1250
    assert Counter(items.column("subset").to_pylist()) == SOURCES
    assert len(set(items.column("item_id").to_pylist())) == 1250
    recs = items.to_pylist()
    flipped = 0
    for it, row in zip(recs, rows):
        best = row["human_ranking"].index(0)
        assert it["candidates"] == [row["response"][best], row["response"][1 - best]]
        assert it["correct"] == [0]
        assert it["prompt"] == [{"role": "user", "content": row["query"]}]
        assert it["context"] == [{"kind": "image", "content": row["image_path"]}]
        meta = json.loads(it["meta"])
        assert meta["image_path"] == row["image_path"] and meta["image_available"] is False
        assert meta["id"] == row["id"] and it["item_id"].startswith(row["id"] + "/")
        flipped += best == 1
    assert flipped == 5
    # A [1, 0] row: the second response is the preferred one.
    lrv = next(it for it in recs if it["item_id"].startswith("LRVInstruction-000000007746/"))
    assert lrv["candidates"][0].startswith("There is no existence")


def _png(path, color):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), color).save(path)


def test_images_option(tmp_path, rows):
    picked = [rows[0], rows[1], next(r for r in rows if r["image_path"].endswith(".png"))]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in picked))
    img = tmp_path / "imgs"
    # Layouts: dataset-root relative (images/...), without the "images/" prefix, and bare file name.
    _png(img / picked[0]["image_path"], "red")
    _png(img / picked[1]["image_path"].removeprefix("images/"), "green")
    _png(img / picked[2]["image_path"].rsplit("/", 1)[1], "blue")
    suite = VLRewardBench(VLRewardBenchOptions(images=str(img)))
    got = suite.load(str(data)).to_pylist()
    for it in got:
        part = it["context"][0]
        assert part["kind"] == "image"
        from PIL import Image

        with Image.open(part["content"]) as im:
            assert im.size == (4, 4)
        assert json.loads(it["meta"])["image_available"] is True

    # A referenced image that is missing is an error naming file, row and field.
    (img / picked[2]["image_path"].rsplit("/", 1)[1]).unlink()
    with pytest.raises(DataError) as e:
        suite.load(str(data))
    assert (e.value.file, e.value.row, e.value.field) == (str(data), 3, "image_path")


def test_hub_image_column_is_written_to_cache(tmp_path, rows):
    from PIL import Image

    from rmorch.suites.files import Record

    row = dict(rows[1], image=Image.new("RGB", (3, 5), "white"))
    suite = VLRewardBench(VLRewardBenchOptions(image_cache=str(tmp_path / "cache")))
    (it,) = list(suite.to_items(iter([Record("hub:x:test", 1, row)])))
    path = it["context"][0]["content"]
    assert path == str(tmp_path / "cache" / row["image_path"])
    with Image.open(path) as im:
        assert im.size == (3, 5)


@pytest.mark.parametrize(
    "field,value",
    [("human_ranking", [0, 0]), ("response", ["only one"]), ("query", ""), ("image_path", "images/nope/x.jpg")],
)
def test_bad_row(tmp_path, rows, field, value):
    bad = dict(rows[2], **{field: value})
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[1]) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError) as e:
        VLRewardBench().load(str(data))
    assert (e.value.file, e.value.row, e.value.field) == (str(data), 3, field)


def _score(items, pairs):
    """Pointwise result rows: pairs[i] = (score of candidate 0, score of candidate 1) for items row i."""
    out = []
    for it, (a, b) in zip(items.to_pylist(), pairs):
        for cand, s in ((0, a), (1, b)):
            out.append({"unit_key": "u", "model": "m", "suite": it["suite"], "subset": it["subset"],
                        "item_id": it["item_id"], "candidate": cand, "score": s, "settings_hash": "h",
                        "error": None if s is not None else "boom"})
    return VLRewardBench().score(items, results_table(out))


def test_metric_by_hand(tmp_path, rows):
    # 2 general (wildvision), 3 hallucination (povid), 1 reasoning.
    pick = ([r for r in rows if "wildvision-battle" in r["image_path"]][:2]
            + [r for r in rows if "/povid/" in r["image_path"]][:3]
            + [r for r in rows if "reasoning_tasks" in r["image_path"]][:1])
    data = tmp_path / "six.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in pick))
    items = VLRewardBench().load(str(data))
    # general: right, tie (wrong) -> 1/2; hallucination: right, wrong, error -> 1/3; reasoning: right -> 1.
    s = _score(items, [(2, 1), (1, 1), (5, 0), (0, 5), (None, 1), (3, 2)])
    assert s.sections == pytest.approx({"General": 0.5, "Hallucination": 1 / 3, "Reasoning": 1.0})
    assert s.subsets == pytest.approx({"wildvision-battle": 0.5, "povid": 1 / 3, "reasoning_tasks": 1.0})
    assert s.score == pytest.approx(3 / 6)  # overall: 3 correct of 6
    assert s.extra["overall_acc"] == s.score
    assert s.extra["macro_avg"] == pytest.approx((0.5 + 1 / 3 + 1.0) / 3)
    assert s.n_items == 6 and s.n_errors == 1

    # Groups pool their sources (not a mean of source accuracies).
    pick2 = ([r for r in rows if "/vlfeedback/" in r["image_path"]][:1]
             + [r for r in rows if "wildvision-battle" in r["image_path"]][:3])
    data2 = tmp_path / "gen.jsonl"
    data2.write_text("".join(json.dumps(r) + "\n" for r in pick2))
    items2 = VLRewardBench().load(str(data2))
    s2 = _score(items2, [(1, 0), (0, 1), (0, 1), (0, 1)])
    assert s2.subsets == pytest.approx({"vlfeedback": 1.0, "wildvision-battle": 0.0})
    assert s2.sections == pytest.approx({"General": 0.25})
    assert s2.score == pytest.approx(0.25) and s2.extra["macro_avg"] == pytest.approx(0.25)
