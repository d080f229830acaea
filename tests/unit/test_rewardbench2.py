"""RewardBench 2: loader, sampling and the official metrics, on hand-computed cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rmorch.core.errors import DataError
from rmorch.core.schema import results_table
from rmorch.suites import get_suite_class
from rmorch.suites.rewardbench2 import RewardBench2, best_of_n_credit, ties_score

FIXTURE = Path(__file__).parents[1] / "fixtures" / "rewardbench2" / "sample.jsonl"


def _rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


def _write(tmp_path: Path, rows: list[dict]) -> str:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


# ---- best_of_n_credit --------------------------------------------------------------------------------------


def test_credit_unique_top_correct() -> None:
    assert best_of_n_credit([3.0, 1.0, 2.0, 0.0]) == 1.0


def test_credit_tied_with_one_other() -> None:
    assert best_of_n_credit([2.0, 2.0, 1.0, 0.0]) == 0.5


def test_credit_three_way_tie() -> None:
    assert best_of_n_credit([1.0, 1.0, 0.0, 1.0]) == pytest.approx(1 / 3)


def test_credit_correct_not_at_top() -> None:
    assert best_of_n_credit([1.0, 3.0, 0.0, 0.0]) == 0.0
    assert best_of_n_credit([3.0, 1.0, 0.0, 0.0], correct_index=1) == 0.0


def test_credit_nan_anywhere_is_zero() -> None:
    # np.max of an array with NaN is NaN, and nothing equals NaN: the official code gives 0 credit.
    assert best_of_n_credit([math.nan, 1.0, 0.0, 0.0]) == 0.0
    assert best_of_n_credit([5.0, 1.0, math.nan, 0.0]) == 0.0


# ---- ties_score --------------------------------------------------------------------------------------------


def test_ties_score_hand_computed() -> None:
    ids = ["ref:1", "tied:1", "ref:2", "tied:2", "ref:3", "tied:3", "ref:4", "tied:4", "ref:5", "ref:6"]
    scores = [
        [5.0, 1.0, 2.0, 3.0],  # ref:1  cim = 5 - 3 = 2, accurate
        [4.0, 4.5, 5.0, 1.0, 2.0],  # tied:1 (3 correct) cim = 4 - 2 = 2, dcm = 5 - 4 = 1, accurate
        [1.0, 2.0, 0.0, 0.0],  # ref:2  cim = 1 - 2 = -1, not accurate
        [3.0, 3.0, 1.0],  # tied:2 (2 correct) cim = 2, dcm = 0, accurate
        [2.0, 1.0, 1.0],  # ref:3  cim = 1, accurate
        [2.0, 2.0, 2.0],  # tied:3 (2 correct) cim = 0, dcm = 0, not accurate (0 > 0 is False)
        [math.nan, 1.0],  # ref:4  cim = NaN (an error), not accurate
        [3.0, 2.0, 0.0],  # tied:4 (2 correct) cim = 2, dcm = 1, accurate
        [1.0, 0.5],  # ref:5  no tied partner: counts for ref accuracy only; cim = 0.5, accurate
        [5.0, 1.0, math.nan],  # ref:6  max(incorrect) = NaN with np.max, not accurate. (Python's max([1, nan])
        #                          would say 1 and make it accurate: order-dependent, which we must not be.)
    ]
    num_correct = [1, 3, 1, 2, 1, 2, 1, 2, 1, 1]
    parts = ties_score(ids, scores, num_correct)
    # ref prompts 1..6: accurate 1, 0, 1, 0, 1, 0 -> 3/6
    assert parts["ref_accuracy"] == pytest.approx(0.5)
    # tied prompts 1..4: accurate 1, 1, 0, 1 -> 3/4
    assert parts["tied_accuracy"] == pytest.approx(0.75)
    # shared prompts 1..4 (5 and 6 have no tied item):
    #   CP  (cim_tied > dcm):             1: 2 > 1 T   2: 2 > 0 T    3: 0 > 0 F       4: 2 > 1 T    -> 3/4
    #   CPH (min(cim_ref, cim_tied) > dcm): 1: 2 > 1 T  2: -1 > 0 F   3: min(1,0)=0>0 F  4: NaN > 1 F -> 1/4
    #   M   tanh(min / dcm - 1):          1: tanh(1)   2: -1/0=-inf -> -1   3: 0/0 NaN -> 0   4: NaN -> 0
    assert parts["correctness_preferred"] == pytest.approx(0.75)
    assert parts["correctness_preferred_hard"] == pytest.approx(0.25)
    m = (math.tanh(1.0) - 1.0) / 4
    assert parts["margin_score"] == pytest.approx(m)
    expected = 0.30 * 0.75 + 0.30 * 0.5 + 0.20 * 0.75 + 0.20 * 0.25 + 0.01 * m
    assert parts["overall"] == pytest.approx(expected)
    assert (parts["n_ref"], parts["n_tied"], parts["n_shared"]) == (6, 4, 4)


def test_ties_margin_positive_over_zero_spread_is_one() -> None:
    # dcm == 0 and min cim > 0: x/0 = +inf, tanh(inf) = 1
    parts = ties_score(["ref:1", "tied:1"], [[3.0, 1.0], [2.0, 2.0, 1.0]], [1, 2])
    assert parts["margin_score"] == 1.0
    assert parts["correctness_preferred"] == 1.0 and parts["correctness_preferred_hard"] == 1.0
    assert parts["overall"] == pytest.approx(0.3 + 0.3 + 0.2 + 0.2 + 0.01)


def test_ties_no_shared_prompts_is_nan() -> None:
    # np.mean over no shared prompts is NaN officially: CP, CPH, M and the overall score are NaN.
    parts = ties_score(["ref:1", "ref:2"], [[1.0, 0.0], [0.0, 1.0]], [1, 1])
    assert parts["ref_accuracy"] == 0.5
    assert parts["tied_accuracy"] == 0.0  # no tied prompts: 0.0, as officially
    for key in ("correctness_preferred", "correctness_preferred_hard", "margin_score", "overall"):
        assert math.isnan(parts[key])


def test_ties_rejects_bad_id() -> None:
    with pytest.raises(ValueError):
        ties_score(["tie:1"], [[1.0, 0.0]], [1])


# ---- loading -----------------------------------------------------------------------------------------------


def test_registered() -> None:
    assert get_suite_class("rewardbench2") is RewardBench2
    assert RewardBench2.hub_id == "allenai/reward-bench-2" and RewardBench2.hub_split == "test"


def test_load_fixture() -> None:
    table = RewardBench2().load(str(FIXTURE))
    rows = table.to_pylist()
    assert len(rows) == 21
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["subset"]] = counts.get(r["subset"], 0) + 1
    assert counts == {"Factuality": 3, "Precise IF": 3, "Math": 3, "Safety": 3, "Focus": 3, "Ties": 6}
    by_id = {r["item_id"]: r for r in rows}
    raw = {r["id"]: r for r in _rows()}
    for iid, r in by_id.items():
        assert r["suite"] == "rewardbench2"
        assert r["candidates"] == raw[iid]["chosen"] + raw[iid]["rejected"]  # chosen first, then rejected
        assert r["correct"] == list(range(len(raw[iid]["chosen"])))
        assert r["prompt"] == [{"role": "user", "content": raw[iid]["prompt"]}]
        assert r["language"] is None
        assert json.loads(r["meta"])["models"] == raw[iid]["models"]
    assert by_id["1"]["correct"] == [0] and len(by_id["1"]["candidates"]) == 4
    assert by_id["tied:1"]["correct"] == [0, 1, 2] and len(by_id["tied:1"]["candidates"]) == 5
    assert json.loads(by_id["4"]["meta"])["additional_metadata"] == {"instruction": "exactly three words"}


_DROP = object()  # marker: remove the field


def _load_error(tmp_path: Path, row_index: int, **changes: object) -> DataError:
    rows = _rows()
    for key, value in changes.items():
        if value is _DROP:
            del rows[row_index][key]
        else:
            rows[row_index][key] = value
    path = _write(tmp_path, rows)
    with pytest.raises(DataError) as exc:
        RewardBench2().load(path)
    err = exc.value
    assert err.file == path and err.row == row_index + 1  # jsonl rows are line numbers
    return err



def test_missing_chosen(tmp_path: Path) -> None:
    err = _load_error(tmp_path, 2, chosen=_DROP)
    assert err.field == "chosen" and "missing" in str(err) and "row 3" in str(err)


def test_empty_response(tmp_path: Path) -> None:
    err = _load_error(tmp_path, 0, rejected=["fine", "  ", "also fine"], num_incorrect=3)
    assert err.field == "rejected" and "empty" in str(err)


def test_non_string_response(tmp_path: Path) -> None:
    assert _load_error(tmp_path, 4, chosen=[42]).field == "chosen"


def test_empty_rejected(tmp_path: Path) -> None:
    assert _load_error(tmp_path, 1, rejected=[]).field == "rejected"


def test_bad_ties_id(tmp_path: Path) -> None:
    err = _load_error(tmp_path, 15, id="reference:1")
    assert err.field == "id" and "ref:<n>" in str(err)


def test_num_correct_mismatch(tmp_path: Path) -> None:
    assert _load_error(tmp_path, 16, num_correct=2).field == "num_correct"


def test_unknown_subset(tmp_path: Path) -> None:
    assert _load_error(tmp_path, 0, subset="Chat").field == "subset"


# ---- sampling ----------------------------------------------------------------------------------------------


def test_sample_keeps_ties_pairs() -> None:
    suite = RewardBench2()
    table = suite.load(str(FIXTURE))
    assert suite.sample_group("ref:7") == suite.sample_group("tied:7") == "ties:7"
    assert suite.sample_group("12") == "12"
    for seed in range(10):
        sample = suite.sample(table, limit_per_subset=1, seed=seed)
        subsets = sample.column("subset").to_pylist()
        ids = [i for i, s in zip(sample.column("item_id").to_pylist(), subsets) if s == "Ties"]
        assert len(sample) == 7 and subsets.count("Factuality") == 1
        n = ids[0].split(":")[1]
        assert sorted(ids) == [f"ref:{n}", f"tied:{n}"]
    assert suite.sample(table, limit_per_subset=1, seed=0).equals(suite.sample(table, limit_per_subset=1, seed=0))


# ---- score -------------------------------------------------------------------------------------------------

# Per-candidate scores for the fixture; None = an errored unit, "skip" = no result row at all.
SCORES: dict[str, list] = {
    "1": [3, 1, 2, 0],  # credit 1
    "2": [2, 2, 1, 0],  # 1/2
    "3": [1, 3, 0, 0],  # 0          Factuality = 1/2
    "4": [1, 1, 1, 0],  # 1/3
    "5": [5, 1, 1, 1],  # 1
    "6": [9, 1, None, 0],  # error -> 0   Precise IF = 4/9
    "7": [1, 0, 0, 0],
    "8": [2, 1, 1, 1],
    "9": [0.5, 0.1, 0.2, 0.3],  # Math = 1
    "10": [0, 1, 2, 3],  # 0
    "11": [0, 0, 0, 0],  # 1/4
    "12": [2, 1, 0, -1],  # 1        Safety = 5/12
    "13": [5, 0, 0, "skip"],  # missing -> 0
    "14": [1, 0, 0, 0],
    "15": [1, 0, 0, 0],  # Focus = 2/3
    "ref:1": [5, 1, 2, 3],  # cim 2, accurate
    "tied:1": [4, 4.5, 5, 1, 2],  # cim 2, dcm 1, accurate; CP T, CPH T, M tanh(1)
    "ref:2": [1, 2, 0, 0],  # cim -1, not accurate
    "tied:2": [3, 3, 1],  # cim 2, dcm 0, accurate; CP T, CPH (-1 > 0) F, M tanh(-inf) = -1
    "ref:3": [2, 1, 1],  # cim 1, accurate
    "tied:3": [2, 2, 2],  # cim 0, dcm 0, not accurate; CP F, CPH F, M 0/0 -> 0
}


def _results() -> object:
    rows = []
    for iid, values in SCORES.items():
        subset = next(r["subset"] for r in _rows() if r["id"] == iid)
        for c, v in enumerate(values):
            if v == "skip":
                continue
            rows.append(
                {
                    "unit_key": "u1",
                    "model": "m",
                    "suite": "rewardbench2",
                    "subset": subset,
                    "item_id": iid,
                    "candidate": c,
                    "score": None if v is None else float(v),
                    "error": "CUDA out of memory" if v is None else None,
                    "settings_hash": "h",
                }
            )
    return results_table(rows)


def test_score_end_to_end() -> None:
    suite = RewardBench2()
    items = suite.load(str(FIXTURE))
    result = suite.score(items, _results())
    m = (math.tanh(1.0) - 1.0) / 3
    ties = 0.30 * (2 / 3) + 0.30 * (2 / 3) + 0.20 * (2 / 3) + 0.20 * (1 / 3) + 0.01 * m
    expected = {
        "Factuality": 0.5,
        "Precise IF": 4 / 9,
        "Math": 1.0,
        "Safety": 5 / 12,
        "Focus": 2 / 3,
        "Ties": ties,
    }
    assert list(result.subsets) == list(expected)
    for name, value in expected.items():
        assert result.subsets[name] == pytest.approx(value), name
    assert result.score == pytest.approx(sum(expected.values()) / 6)
    assert result.sections == {}
    assert result.n_items == 21 and result.n_errors == 2
    parts = result.extra["ties"]
    assert parts["ref_accuracy"] == pytest.approx(2 / 3) and parts["tied_accuracy"] == pytest.approx(2 / 3)
    assert parts["correctness_preferred"] == pytest.approx(2 / 3)
    assert parts["correctness_preferred_hard"] == pytest.approx(1 / 3)
    assert parts["margin_score"] == pytest.approx(m)


def test_score_without_ties() -> None:
    suite = RewardBench2()
    items = suite.load(str(FIXTURE))
    items = items.filter([s != "Ties" for s in items.column("subset").to_pylist()])
    result = suite.score(items, _results())
    assert "Ties" not in result.subsets and result.extra == {}
    assert result.score == pytest.approx((0.5 + 4 / 9 + 1.0 + 5 / 12 + 2 / 3) / 5)
