"""VL-RewardBench, `MMInstruction/VL-RewardBench`: 1,250 image + query + two-response pairs with human-verified
preferences (Li et al. 2024, arXiv 2411.17451; github.com/vl-rewardbench/VL_RewardBench).

Loading. Rows carry `id`, `image_path` (images/<source>/<file>), `query`, `response` (two strings) and
`human_ranking` (two ranks; rank 0 is the preferred one, as the official inference.py reads it: the expected answer
is human_ranking.index(0); 1,245 of the 1,250 rows are [0, 1], the other 5 [1, 0]). Items:
    subset      the source folder of `image_path` (povid, rlaif-v, rlhf-v, vlfeedback, wildvision-battle,
                reasoning_tasks): the official cal.py's per-"dataset" unit
    item_id     "<id>/<hash>": ids repeat (18 rows), so a short hash of the official deduplication key
                (id + query + sorted responses, cal.py) is appended
    prompt      [{"role": "user", "content": query}]
    candidates  [preferred, rejected] (by human_ranking), correct [0]
    context     [{"kind": "image", "content": PATH}]
    meta        id, image_path, human_ranking, models (reordered as the candidates), judge, query_source, ...

Images. The local text rows (data.jsonl) hold no images. With the suite option `images: DIR` each item's context
holds the absolute path of its image, looked up as DIR/<image_path>, DIR/<image_path without "images/">, then
DIR/<file name>; a missing image is a DataError (file, row, field image_path). Without `images`, items still load
(so text-only baselines and judges run): the context content is then the referenced `image_path` as written in the
row (not a readable file) and meta["image_available"] is false. From the hub the `image` column is used: each image
is written once to a cache directory (option `image_cache`, default ~/.cache/rmorch/vl-rewardbench/images) under its
`image_path` (or <id>.png), so items always carry a file path.

Official metric (cal.py of the official repository, and the paper's Table 2). An item is correct iff the preferred
response is judged better: for pointwise scores, score(preferred) > score(rejected) strictly (a tie is wrong, as in
RewardBench). Sources are grouped General (vlfeedback, wildvision-battle: 183 items), Hallucination (povid, rlaif-v,
rlhf-v: 749) and Reasoning (reasoning_tasks: 318). Group accuracy = correct items / items in the group (pooled, not a
mean of source accuracies). "Overall Accuracy" = correct items / all items; "Macro Average Accuracy" = plain mean of
the three group accuracies. `score` is Overall Accuracy (the paper's headline "accuracy", e.g. the abstract's
GPT-4o number); extra["macro_avg"] holds the Macro Average (the paper reports both; it recommends macro for the
task imbalance). `sections` are the three groups, `subsets` the six sources.
Generative judges (rmorch.suites.judging): the base-order verdict counts 1 / 0 / 0.5 if unparsed, ratings as RewardBench
(strictly higher 1, lower 0, tie or invalid 0.5). The official cal.py instead drops unparsed judgements from the
denominator and takes a majority over k samples; that path is not reproduced here.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from rmorch.core.errors import DataError
from rmorch.suites import register_suite
from rmorch.suites.base import (
    Suite,
    SuiteOptions,
    SuiteScore,
    optional_fields,
    pairwise_credit,
    plain,
    require,
    require_str,
    require_str_list,
    subset_means,
)
from rmorch.suites.files import Record
from rmorch.suites.judging import judge_metrics, official_credits, pairwise_rating_credit

# Source folder (image_path.split("/")[1]) -> task group, as the official cal.py maps them.
GROUPS: dict[str, str] = {
    "vlfeedback": "General",
    "wildvision-battle": "General",
    "povid": "Hallucination",
    "rlaif-v": "Hallucination",
    "rlhf-v": "Hallucination",
    "reasoning_tasks": "Reasoning",
}
GROUP_ORDER = ("General", "Hallucination", "Reasoning")

DEFAULT_IMAGE_CACHE = os.path.join("~", ".cache", "rmorch", "vl-rewardbench", "images")


@dataclass(frozen=True)
class VLRewardBenchOptions(SuiteOptions):
    # A local directory holding the images the rows reference (image_path, relative to the dataset root).
    images: str | None = None
    # Where images from the hub's `image` column are written as files.
    image_cache: str | None = None


def group_scores(subsets: list[str], credits: list[float]) -> dict[str, float]:
    """Pooled accuracy per task group over the sources present (official: group correct / group total)."""
    sums: dict[str, list[float]] = {}
    for s, c in zip(subsets, credits):
        sums.setdefault(GROUPS[s], []).append(c)
    return {g: sum(sums[g]) / len(sums[g]) for g in GROUP_ORDER if g in sums}


def source_of(rec: Record) -> tuple[str, str | None]:
    """(source folder, image_path or None). Hub rows without image_path fall back to the id's prefix."""
    if rec.data.get("image_path") is not None:
        path = require_str(rec, "image_path")
        parts = path.replace("\\", "/").split("/")
        source = parts[1] if len(parts) >= 3 and parts[0] == "images" else parts[0] if len(parts) >= 2 else ""
        if source not in GROUPS:
            raise DataError(rec.source, f"unknown VL-RewardBench source folder in '{path}' (expected one of "
                            f"{', '.join(GROUPS)})", row=rec.row, field="image_path")
        return source, path
    rid = str(rec.data.get("id") or "")
    for prefix, source in (("hallucination_pair", "povid"), ("RLAIF-V", "rlaif-v"), ("RLHF-V", "rlhf-v"),
                           ("wildvision-battle", "wildvision-battle"), ("mathverse", "reasoning_tasks"),
                           ("mmmu_pro", "reasoning_tasks")):
        if rid.startswith(prefix):
            return source, None
    if rid:
        return "vlfeedback", None
    raise DataError(rec.source, "missing field", row=rec.row, field="image_path")


@register_suite
class VLRewardBench(Suite):
    name = "vl-rewardbench"
    version = "1"
    hub_id = "MMInstruction/VL-RewardBench"
    hub_split = "test"
    Options = VLRewardBenchOptions
    description = "VL-RewardBench: 1,250 image+query pairs, General/Hallucination/Reasoning (overall accuracy)"

    def to_items(self, records: Iterator[Record]) -> Iterator[dict[str, Any]]:
        images_dir = os.path.expanduser(self.options.images) if self.options.images else None
        if images_dir is not None and not os.path.isdir(images_dir):
            raise DataError(images_dir, "the `images` option must be a directory holding the referenced images")
        for rec in records:
            rid = str(require(rec, "id"))
            query = require_str(rec, "query")
            responses = require_str_list(rec, "response")
            if len(responses) != 2:
                raise DataError(rec.source, f"expected 2 responses, got {len(responses)}", row=rec.row,
                                field="response")
            ranking = plain(rec.data.get("human_ranking"))
            if not isinstance(ranking, (list, tuple)) or any(
                    isinstance(r, bool) or not isinstance(r, int) for r in ranking) or sorted(ranking) != [0, 1]:
                raise DataError(rec.source, f"expected a ranking of 2 responses ([0, 1] or [1, 0]), got {ranking!r:.80}",
                                row=rec.row, field="human_ranking")
            best = list(ranking).index(0)  # rank 0 is preferred (official inference.py)
            order = [best, 1 - best]
            source, image_path = source_of(rec)
            context, available = self._image(rec, rid, image_path, images_dir)
            key = rid + query + "\t".join(sorted(responses))  # the official cal.py's item key
            models = plain(rec.data.get("models"))
            meta = {
                "id": rid,
                "image_path": image_path,
                "image_available": available,
                "human_ranking": list(ranking),
                "response_order": order,
            }
            if isinstance(models, (list, tuple)) and len(models) == 2:
                meta["models"] = [models[i] for i in order]
            meta.update(optional_fields(rec, ("judge", "query_source", "ground_truth", "human_error_analysis")))
            yield {
                "suite": self.name,
                "subset": source,
                "item_id": f"{rid}/{hashlib.sha1(key.encode()).hexdigest()[:10]}",
                "prompt": [{"role": "user", "content": query}],
                "candidates": [responses[i] for i in order],
                "correct": [0],
                "context": [{"kind": "image", "content": context}],
                "meta": meta,
                "_record": rec,
            }

    def _image(self, rec: Record, rid: str, image_path: str | None, images_dir: str | None) -> tuple[str, bool]:
        """(context content, whether it is a readable image file)."""
        image = rec.data.get("image")
        if image is not None:  # hub rows: write the image column out once as a file
            cache = os.path.abspath(os.path.expanduser(self.options.image_cache or DEFAULT_IMAGE_CACHE))
            rel = image_path or f"{rid}.png"
            target = os.path.abspath(os.path.join(cache, rel))
            if "\x00" in rel or os.path.commonpath([cache, target]) != cache or target == cache:
                raise DataError(rec.source, f"image file name {rel!r:.80} would be written outside the image cache "
                                f"{cache}", row=rec.row, field="image_path" if image_path else "id")
            if not os.path.exists(target):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                _write_image(rec, image, target)
            return target, True
        if image_path is None:
            raise DataError(rec.source, "no image_path and no image", row=rec.row, field="image_path")
        if images_dir is None:
            return image_path, False
        rel = image_path.replace("\\", "/")
        tries = [rel]
        if rel.startswith("images/"):
            tries.append(rel[len("images/"):])
        tries.append(os.path.basename(rel))
        for t in tries:
            p = os.path.join(images_dir, t)
            if os.path.isfile(p):
                return os.path.abspath(p), True
        raise DataError(rec.source, f"image '{image_path}' not found under {images_dir}", row=rec.row,
                        field="image_path")

    def score(self, items: pa.Table, results: pa.Table) -> SuiteScore:
        credit, bad = official_credits(items, results, pointwise=pairwise_credit, ratings=pairwise_rating_credit)
        subsets = items.column("subset").to_pylist()
        groups = group_scores(subsets, credit)
        overall = sum(credit) / len(credit) if credit else float("nan")
        macro = sum(groups.values()) / len(groups) if groups else float("nan")
        return SuiteScore(
            score=overall,
            sections=groups,
            subsets=subset_means(subsets, credit),
            n_items=len(credit),
            n_errors=sum(bad),
            extra={"overall_acc": overall, "macro_avg": macro},
            judge=judge_metrics(items, results, official=overall),
            item_credits=credit,
        )

    def combine_subsets(self, means: dict[str, float], counts: dict[str, int]) -> tuple[float, dict[str, float]]:
        """Groups pool their sources' items (count-weighted); the overall accuracy pools all items."""
        total: dict[str, float] = {}
        n: dict[str, int] = {}
        for s, m in means.items():
            g = GROUPS[s]
            total[g] = total.get(g, 0.0) + m * counts[s]
            n[g] = n.get(g, 0) + counts[s]
        groups = {g: total[g] / n[g] for g in GROUP_ORDER if g in n}
        all_n = sum(n.values())
        return (sum(total.values()) / all_n if all_n else float("nan")), groups


def _write_image(rec: Record, image: Any, target: str) -> None:
    """Save a hub image (PIL image, or {"bytes", "path"} dict) to `target`."""
    tmp = target + ".part"
    try:
        if isinstance(image, dict) and image.get("bytes") is not None:
            if not isinstance(image["bytes"], (bytes, bytearray)):
                raise DataError(rec.source, f"image bytes must be binary, got {type(image['bytes']).__name__}",
                                row=rec.row, field="image")
            with open(tmp, "wb") as f:
                f.write(image["bytes"])
        elif isinstance(image, dict) and isinstance(image.get("path"), str) and os.path.isfile(image["path"]):
            with open(image["path"], "rb") as src, open(tmp, "wb") as f:
                f.write(src.read())
        elif hasattr(image, "save"):
            buf = io.BytesIO()
            fmt = "PNG" if target.lower().endswith(".png") else "JPEG"
            img = image.convert("RGB") if fmt == "JPEG" and getattr(image, "mode", "RGB") not in ("RGB", "L") else image
            img.save(buf, format=fmt)
            with open(tmp, "wb") as f:
                f.write(buf.getvalue())
        else:
            raise DataError(rec.source, f"unreadable image value ({type(image).__name__})", row=rec.row, field="image")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
