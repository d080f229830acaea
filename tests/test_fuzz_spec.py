"""Fuzzing the spec loader (orchestrator/spec/parse.py): random documents, every known key given a wrong value or removed,
unknown keys at every level, huge strings, and spec files with non-UTF-8 bytes, random bytes, truncation or nothing.

Property: a SweepSpec, or a UserError (SpecError for a wrong document) whose key names the entry or key at fault;
never a raw TypeError / KeyError / AttributeError / UnicodeDecodeError / RecursionError.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from rmorch.core.errors import SpecError, UserError
from rmorch.orchestrator.spec.parse import load_spec, spec_from_dict
from rmorch.orchestrator.spec.sweep_spec import TOP_KEYS as SPEC_TOP_KEYS
from rmorch.orchestrator.spec.sweep_spec import SweepSpec
from tests.fuzz_strategies import fuzz, hostile_text, json_value

PUBLISHED = Path(__file__).resolve().parent / "fixtures" / "userfile" / "chosen_rejected.jsonl"  # any existing file


def base_doc() -> dict[str, Any]:
    """A valid spec using every suite-option kind and every model kind."""
    return {
        "seed": 1,
        "out": "runs/fuzz",
        "shard_size": 8,
        "max_retries": 1,
        "resamples": 10,
        "suites": [
            {"name": "rewardbench", "data": "some/dir", "limit_per_subset": 2, "subsets": ["alpacaeval-easy"]},
            {"name": "fuzz-prefs", "kind": "file", "data": "p.csv",
             "columns": {"prompt": "q", "response_a": "a", "response_b": "b", "label": "w"}, "a_wins": "A"},
            {"name": "m-rewardbench", "languages": ["deu_Latn"]},
            {"name": "vl-rewardbench", "images": "imgs"},
            "rewardbench2",
        ],
        "models": [
            "length",
            {"name": "random", "suites": ["rewardbench"]},
            {"name": "rm", "kind": "classifier", "path": "builtin:smollm2-135m-instruct", "max_length": 512,
             "batch_tokens": 1024, "num_cpus": 1, "num_gpus": 0, "replicas": 1, "params_b": 0.1},
            {"name": "judge", "kind": "judge", "path": "x", "protocol": "pairwise", "permutations": "both",
             "max_tokens": 8, "max_model_len": 64, "replicas": "auto"},
            {"name": "api", "kind": "judge", "backend": "openai", "base_url": "http://127.0.0.1:1/v1", "path": "m",
             "api_key_env": "X"},
            {"name": "imp", "kind": "implicit", "path": "p", "mode": "sum"},
            {"name": "dr", "kind": "density_ratio", "path": "p", "weak_path": "w"},
            {"name": "pref", "kind": "preference", "path": "p"},
            {"name": "gpm", "kind": "gpm", "path": "p"},
            {"name": "pub", "kind": "published", "path": str(PUBLISHED)},
        ],
        "ensembles": [{"name": "ens", "members": ["length", "random"], "method": "mean", "penalty": 1.0}],
    }


@pytest.fixture(autouse=True)
def _restore_suite_registry():
    """`kind: file` entries register their name as a suite: keep the registry as it was for the other tests."""
    from rmorch.suites import SUITES

    with SUITES.scoped():
        yield


def outcome(doc: Any) -> SweepSpec | SpecError:
    try:
        return spec_from_dict(doc, source="fuzz.yaml")
    except SpecError as e:
        assert str(e).startswith("fuzz.yaml: spec key '"), str(e)
        str(e).encode("utf-8")  # printable
        return e


def test_the_base_spec_is_valid() -> None:
    assert isinstance(spec_from_dict(base_doc()), SweepSpec)


# ---- random documents ------------------------------------------------------------------------------------------

TOP_KEYS = sorted(SPEC_TOP_KEYS)


@fuzz(300)
@given(doc=st.one_of(json_value, st.dictionaries(st.sampled_from(TOP_KEYS), json_value, max_size=8)))
@example(doc=None)
@example(doc={"suites": [None], "models": ["length"]})
@example(doc={"suites": ["rewardbench"], "models": [{"name": "x", "kind": []}]})
@example(doc={"suites": ["rewardbench"], "models": ["length", "random"], "ensembles": {}})
def test_random_documents(doc: Any) -> None:
    result = outcome(doc)
    if isinstance(doc, dict) and isinstance(doc.get("ensembles"), dict) and isinstance(result, SweepSpec):
        pytest.fail("a mapping as `ensembles` was silently read as no ensembles")


# ---- a wrong value (or none) for every known key ----------------------------------------------------------------


def known_keys() -> list[tuple[str, int | None, str]]:
    """(section, entry index or None for top-level keys, key) for every key the base spec could hold."""
    from rmorch.actors import get_kind
    from rmorch.core.model_spec import ResourceSpec
    from rmorch.orchestrator.spec.sweep_spec import EnsembleSpec, SuiteSpec
    from rmorch.suites import get_suite_class

    doc = base_doc()
    out: list[tuple[str, int | None, str]] = [("top", None, k) for k in TOP_KEYS]
    for i, s in enumerate(doc["suites"]):
        s = {"name": s} if isinstance(s, str) else s
        cls = get_suite_class(s.get("kind") or s["name"])
        keys = {f.name for f in dataclasses.fields(SuiteSpec)} - {"options"}
        keys |= {f.name for f in dataclasses.fields(cls.Options)}
        out += [("suites", i, k) for k in sorted(keys)]
    for i, m in enumerate(doc["models"]):
        m = {"name": m} if isinstance(m, str) else m
        kind = get_kind(m.get("kind") or m["name"])
        keys = {"name", "kind", "suites"} | {f.name for f in dataclasses.fields(ResourceSpec)}
        keys |= {f.name for f in dataclasses.fields(kind.Config)} if dataclasses.is_dataclass(kind.Config) else set()
        out += [("models", i, k) for k in sorted(keys)]
    out += [("ensembles", 0, f.name) for f in dataclasses.fields(EnsembleSpec)]
    return out


KNOWN = known_keys()
DELETE = object()
wrong_value = st.one_of(st.just(DELETE), json_value, hostile_text, st.sampled_from([
    "", "auto", "mean", "both", "random:0", "random:" + "9" * 5000, "all", "tokenizer", "plain", "vllm", "openai",
    "hub", 0, -1, 1, 2 ** 63, float("nan"), float("inf"), True, [], {}, ["x"], ["length", "length"], "x\udcff",
    ["rewardbench", "\ud800"], {"\udfff": 1},
]))


@fuzz(600)
@given(where=st.sampled_from(KNOWN), value=wrong_value)
@example(where=("top", None, "ensembles"), value={})
@example(where=("top", None, "ensembles"), value="")
@example(where=("models", 3, "permutations"), value="random:" + "9" * 5000)
def test_wrong_value_for_a_known_key(where: tuple[str, int | None, str], value: Any) -> None:
    section, i, key = where
    doc = base_doc()
    if section == "top":
        target, prefix = doc, key
    else:
        entry = doc[section][i]
        if isinstance(entry, str):
            entry = doc[section][i] = {"name": entry}
        target, prefix = entry, f"{section}[{i}]"
    if value is DELETE:
        target.pop(key, None)
    else:
        target[key] = copy.deepcopy(value)
    result = outcome(doc)
    if isinstance(result, SpecError):
        # Or an entry that refers to the changed one by name: models[i].suites, ensembles[i].members.
        refers = {"name": ("suites", "models", "ensembles"), "suites": ("models",), "models": ("ensembles",)}
        section_of_error = result.key.split("[")[0].split(".")[0]
        ok = result.key.startswith(prefix) or section_of_error in refers.get(key, ())
        assert ok, f"{where} = {value!r:.80}: the error names {result.key!r}: {result}"


@fuzz(300)
@given(where=st.sampled_from(["top", "suites", "models", "ensembles"]), index=st.integers(0, 20),
       key=st.text(min_size=1, max_size=30), value=json_value)
def test_unknown_keys_are_named(where: str, index: int, key: str, value: Any) -> None:
    doc = base_doc()
    if where == "top":
        target, known = doc, set(TOP_KEYS)
    else:
        i = index % len(doc[where])
        if isinstance(doc[where][i], str):
            doc[where][i] = {"name": doc[where][i]}
        target = doc[where][i]
        known = {k for s, j, k in KNOWN if s == where and j == i}
    if key in known or key in target:
        return
    target[key] = value
    result = outcome(doc)
    assert isinstance(result, SpecError), f"unknown key {key!r} accepted"
    assert result.key.endswith(key) and "unknown key" in str(result), str(result)


@fuzz(100)
@given(where=st.sampled_from([k for k in KNOWN if k[2] not in ("name", "kind", "suites", "members")]),
       text=st.sampled_from(["x", "\x00", "{{question}}", "\udcff"]))
def test_huge_strings(where: tuple[str, int | None, str], text: str) -> None:
    section, i, key = where
    doc = base_doc()
    entry = doc if section == "top" else doc[section][i]
    if isinstance(entry, str):
        entry = doc[section][i] = {"name": entry}
    entry[key] = text * 1_000_000
    outcome(doc)


# ---- spec files --------------------------------------------------------------------------------------------------


def load_file(tmp_path: Path, data: bytes) -> SweepSpec | UserError:
    path = tmp_path / "spec.yaml"
    path.write_bytes(data)
    try:
        return load_spec(str(path))
    except UserError as e:
        assert str(path) in str(e), str(e)
        str(e).encode("utf-8")
        return e


VALID_YAML = yaml.safe_dump(base_doc(), sort_keys=False).encode()


def test_spec_file_edge_cases(tmp_path: Path) -> None:
    assert isinstance(load_file(tmp_path, VALID_YAML), SweepSpec)
    assert isinstance(load_file(tmp_path, b"\xef\xbb\xbf" + VALID_YAML), SweepSpec)  # a BOM is fine
    for data in (b"", b"\n\n", b"---\n", b"~", b"[" * 100_000, b"{a: " * 50_000, b"- " * 200_000,
                 b"&a [*a]", b"!!python/object/apply:os.system ['true']", b"seed: 1\x00", b"\xff\xfe\x00s",
                 VALID_YAML.replace(b"runs/fuzz", b"runs/\xe9\x80"), b"a: 1\ta: 2",
                 VALID_YAML.replace(b"name: rm\n", b'name: "rm\\udcff"\n')):
        result = load_file(tmp_path, data)
        assert isinstance(result, UserError), data[:40]


@fuzz(200)
@given(cut=st.integers(0, len(VALID_YAML)), junk=st.binary(max_size=8), mode=st.sampled_from(["cut", "insert", "replace"]))
def test_damaged_spec_files(tmp_path_factory, cut: int, junk: bytes, mode: str) -> None:
    if mode == "cut":
        data = VALID_YAML[:cut]
    elif mode == "insert":
        data = VALID_YAML[:cut] + junk + VALID_YAML[cut:]
    else:
        data = VALID_YAML[:cut] + junk + VALID_YAML[cut + len(junk):]
    load_file(tmp_path_factory.mktemp("spec"), data)


@fuzz(150)
@given(doc=st.one_of(json_value, st.dictionaries(st.sampled_from(TOP_KEYS), json_value, max_size=8)))
def test_random_yaml_files(tmp_path_factory, doc: Any) -> None:
    load_file(tmp_path_factory.mktemp("spec"), yaml.safe_dump(doc, allow_unicode=True).encode("utf-8", "surrogatepass"))
