"""The sweep spec: every invalid spec fails with a SpecError naming the offending key; valid specs round-trip."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from rmorch.core.errors import SpecError, UserError
from rmorch.orchestrator.spec.parse import load_spec, spec_from_dict


def _doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "seed": 3,
        "out": "runs/test",
        "suites": [{"name": "rewardbench", "data": "some/dir", "limit_per_subset": 5}],
        "models": [
            {"name": "length"},
            {"name": "rm", "kind": "classifier", "path": "builtin:smollm2-135m-instruct", "max_length": 512,
             "batch_tokens": 1024},
        ],
    }
    doc.update(overrides)
    return doc


def _classifier(**keys: Any) -> dict[str, Any]:
    return {"name": "rm", "kind": "classifier", "path": "org/rm", **keys}


def _spec_error(doc: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        spec_from_dict(doc)
    return info.value


# ---- unknown names ------------------------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_right_one() -> None:
    e = _spec_error(_doc(sed=1))
    assert e.key == "sed"
    assert "unknown key" in str(e)
    assert "did you mean 'seed'?" in str(e)


def test_unknown_suite_name_suggests_the_right_one() -> None:
    e = _spec_error(_doc(suites=[{"name": "rewardbnch"}]))
    assert e.key == "suites[0].name"
    assert "unknown suite 'rewardbnch'" in str(e)
    assert "did you mean 'rewardbench'?" in str(e)


def test_unknown_suite_option_suggests_the_right_one() -> None:
    e = _spec_error(_doc(suites=[{"name": "rewardbench", "limit_per_subet": 3}]))
    assert e.key == "suites[0].limit_per_subet"
    assert "did you mean 'limit_per_subset'?" in str(e)


def test_unknown_model_kind() -> None:
    e = _spec_error(_doc(models=[{"name": "rm", "kind": "clasifier", "path": "x"}]))
    assert e.key == "models[0].kind"
    assert "unknown model kind 'clasifier'" in str(e)
    assert "did you mean 'classifier'?" in str(e)


def test_non_string_kind_is_a_spec_error() -> None:
    """`kind: 5` in YAML must be reported, not crash the name suggestion with a TypeError."""
    e = _spec_error(_doc(models=[{"name": "rm", "kind": 5}]))
    assert e.key == "models[0].kind"


def test_model_without_kind_and_not_a_baseline_name() -> None:
    e = _spec_error(_doc(models=[{"name": "my-rm", "path": "org/rm"}]))
    assert e.key == "models[0].kind"
    assert "'my-rm'" in str(e)
    assert "needs a kind" in str(e)


def test_unknown_model_key_suggests_the_config_key() -> None:
    e = _spec_error(_doc(models=[_classifier(max_lenght=512)]))
    assert e.key == "models[0].max_lenght"
    assert "unknown key" in str(e)
    assert "did you mean 'max_length'?" in str(e)


def test_unknown_model_key_suggests_a_resource_key() -> None:
    """A typo of a common model key (num_cpus, replicas, ...) must be suggested too, also for kinds whose Config has
    no fields at all (the baselines); the 'known:' list must not be empty."""
    e = _spec_error(_doc(models=[{"name": "length", "num_cpu": 2}]))
    assert e.key == "models[0].num_cpu"
    assert "did you mean 'num_cpus'?" in str(e)
    assert not str(e).rstrip().endswith("known:")


def test_model_missing_required_key() -> None:
    e = _spec_error(_doc(models=[{"name": "rm", "kind": "classifier"}]))
    assert e.key == "models[0].path"
    assert "required" in str(e)


# ---- wrong types and values ---------------------------------------------------------------------------------


def test_limit_per_subset_must_be_an_integer() -> None:
    e = _spec_error(_doc(suites=[{"name": "rewardbench", "limit_per_subset": "ten"}]))
    assert e.key == "suites[0].limit_per_subset"
    assert "expected int" in str(e)
    assert "'ten'" in str(e)


def test_limit_per_subset_must_be_positive_and_the_key_is_named_once() -> None:
    e = _spec_error(_doc(suites=[{"name": "rewardbench", "limit_per_subset": 0}]))
    assert e.key == "suites[0].limit_per_subset"
    assert ">= 1" in str(e)


def test_dtype_outside_its_literal() -> None:
    e = _spec_error(_doc(models=[_classifier(dtype="fp8")]))
    assert e.key == "models[0].dtype"
    assert "'fp8'" in str(e)
    for allowed in ("'auto'", "'bfloat16'", "'float16'", "'float32'"):
        assert allowed in str(e)


def test_boolean_is_not_an_integer() -> None:
    e = _spec_error(_doc(models=[_classifier(max_length=True)]))
    assert e.key == "models[0].max_length"
    assert "integer" in str(e)


def test_boolean_is_not_a_number_for_resources() -> None:
    e = _spec_error(_doc(models=[{"name": "length", "num_cpus": True}]))
    assert e.key == "models[0].num_cpus"


def test_top_level_seed_type() -> None:
    e = _spec_error(_doc(seed="zero"))
    assert e.key == "seed"


def test_negative_seed_is_rejected() -> None:
    """Seeds feed numpy's default_rng in sampling, which rejects negative seeds with a bare ValueError mid-sweep."""
    e = _spec_error(_doc(seed=-1))
    assert e.key == "seed"


def test_subsets_must_be_a_list() -> None:
    e = _spec_error(_doc(suites=[{"name": "rewardbench", "subsets": "math-prm"}]))
    assert e.key == "suites[0].subsets"


def test_duplicate_model_names() -> None:
    e = _spec_error(_doc(models=[{"name": "length"}, {"name": "length", "num_cpus": 2}]))
    assert e.key == "models"
    assert "duplicate" in str(e)
    assert "length" in str(e)


def test_duplicate_suite_names() -> None:
    e = _spec_error(_doc(suites=["rewardbench", {"name": "rewardbench", "limit_per_subset": 2}]))
    assert e.key == "suites"
    assert "duplicate" in str(e)


@pytest.mark.parametrize("suites", [[], None, "rewardbench"])
def test_suites_must_be_a_non_empty_list(suites: Any) -> None:
    doc = _doc(suites=suites)
    if suites is None:
        del doc["suites"]
    e = _spec_error(doc)
    assert e.key == "suites"


def test_models_must_be_a_non_empty_list() -> None:
    e = _spec_error(_doc(models=[]))
    assert e.key == "models"


def test_batch_tokens_below_max_length() -> None:
    e = _spec_error(_doc(models=[_classifier(max_length=2048, batch_tokens=1024)]))
    assert e.key == "models[0].batch_tokens"
    assert "2048" in str(e)


def test_resource_values_are_checked() -> None:
    assert _spec_error(_doc(models=[{"name": "length", "replicas": 0}])).key == "models[0].replicas"
    assert _spec_error(_doc(models=[{"name": "length", "num_cpus": 0}])).key == "models[0].num_cpus"
    assert _spec_error(_doc(models=[{"name": "length", "num_gpus": -1}])).key == "models[0].num_gpus"


def test_the_key_index_points_at_the_bad_entry() -> None:
    models = [{"name": "length"}, {"name": "random"}, _classifier(dtype="fp8")]
    assert _spec_error(_doc(models=models)).key == "models[2].dtype"


@pytest.mark.parametrize("doc", [None, [], "suites: x", 5])
def test_the_document_must_be_a_mapping(doc: Any) -> None:
    with pytest.raises(SpecError):
        spec_from_dict(doc)


# ---- load_spec ----------------------------------------------------------------------------------------------


def test_load_spec_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("sed: 1\nsuites: [rewardbench]\nmodels: [length]\n")
    with pytest.raises(SpecError) as info:
        load_spec(str(path))
    assert str(path) in str(info.value)
    assert "'sed'" in str(info.value)
    assert "did you mean 'seed'?" in str(info.value)


@pytest.mark.parametrize("body,key", [
    ("suites: [rewardbench]\nmodels: [length, length]\n", "models"),
    ("shard_size: 0\nsuites: [rewardbench]\nmodels: [length]\n", "shard_size"),
])
def test_load_spec_names_the_file_for_whole_spec_checks(tmp_path: Path, body: str, key: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(body)
    with pytest.raises(SpecError) as info:
        load_spec(str(path))
    assert info.value.key == key
    assert str(path) in str(info.value)


def test_load_spec_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(UserError) as info:
        load_spec(str(path))
    assert str(path) in str(info.value)


def test_load_spec_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("suites: [rewardbench\nmodels: {\n")
    with pytest.raises(UserError) as info:
        load_spec(str(path))
    assert str(path) in str(info.value)
    assert "YAML" in str(info.value)


def test_load_spec_reads_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_doc()))
    assert load_spec(str(path)) == spec_from_dict(_doc())


# ---- valid specs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key,value", [("unit_timeout_s", 0), ("unit_timeout_s", "soon"), ("unit_timeout_s", True),
                                       ("load_timeout_s", -1), ("load_timeout_s", "auto"), ("load_timeout_s", True)])
def test_timeouts_are_positive_seconds(key: str, value: Any) -> None:
    assert _spec_error(_doc(**{key: value})).key == key


def test_timeouts_may_be_null() -> None:
    spec = spec_from_dict(_doc(unit_timeout_s=None, load_timeout_s=None))
    assert (spec.unit_timeout_s, spec.load_timeout_s) == (None, None)
    assert spec_from_dict(_doc()).load_timeout_s == 7200.0


def test_valid_spec_values() -> None:
    spec = spec_from_dict(_doc())
    assert spec.seed == 3 and spec.out == "runs/test"
    assert [s.name for s in spec.suites] == ["rewardbench"]
    assert spec.suites[0].limit_per_subset == 5 and spec.suites[0].data == "some/dir"
    rm = spec.models[1]
    assert rm.kind == "classifier"
    assert rm.config.max_length == 512 and rm.config.batch_tokens == 1024
    assert rm.config.dtype == "auto"


def test_round_trip() -> None:
    doc = _doc(
        shard_size=7,
        max_retries=1,
        suites=[
            {"name": "rewardbench", "data": "d", "limit_per_subset": 2, "subsets": ["math-prm", "hep-go"]},
            {"name": "rewardbench2", "split": "test"},
        ],
        models=[
            "length",
            {"name": "random", "num_cpus": 0.5, "replicas": 3},
            _classifier(dtype="bfloat16", max_length=256, batch_tokens=256, truncation_side="right",
                        chat_template="plain", revision="abc123", num_gpus=0.5),
        ],
    )
    spec = spec_from_dict(doc)
    assert spec_from_dict(spec.to_dict()) == spec
    # ... and through YAML, as `out/spec.yaml` records it.
    assert spec_from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict()))) == spec
    assert spec.suites[0].subsets == ("math-prm", "hep-go")
    assert spec.models[1].resources.replicas == 3


def test_settings_hash_changes_with_dtype_not_with_resources() -> None:
    base = spec_from_dict(_doc(models=[_classifier()])).models[0]
    other_dtype = spec_from_dict(_doc(models=[_classifier(dtype="float32")])).models[0]
    more_cpus = spec_from_dict(_doc(models=[_classifier(num_cpus=4, replicas=2)])).models[0]
    assert base.settings_hash != other_dtype.settings_hash
    assert base.settings_hash == more_cpus.settings_hash
    assert base.resources != more_cpus.resources
    # The hash is a pure function of the settings: equal specs, equal hashes.
    assert base.settings_hash == spec_from_dict(_doc(models=[_classifier()])).models[0].settings_hash


def test_settings_hash_differs_between_kinds() -> None:
    models = spec_from_dict(_doc(models=["length", "random"])).models
    assert models[0].settings_hash != models[1].settings_hash


@pytest.mark.parametrize("name", ["length", "random"])
def test_baseline_kind_is_inferred(name: str) -> None:
    for entry in (name, {"name": name}):
        m = spec_from_dict(_doc(models=[entry])).models[0]
        assert m.name == name
        assert m.kind == name


def test_spec_from_dict_does_not_mutate_its_input() -> None:
    doc = _doc()
    before = copy.deepcopy(doc)
    spec_from_dict(doc)
    assert doc == before


def test_specs_are_frozen() -> None:
    spec = spec_from_dict(_doc())
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 1  # type: ignore[misc]


def test_example_specs_are_valid() -> None:
    """Every spec in examples/ and bench/ loads (hub ids are not contacted: models and suites load only when a sweep
    runs)."""
    import collections

    from rmorch.orchestrator.schedule.scheduler import tensor_parallel_size

    root = Path(__file__).parents[2]
    examples = sorted((root / "examples").glob("*.yaml")) + sorted((root / "bench").glob("*.yaml"))
    assert len(examples) >= 3
    for path in examples:
        load_spec(str(path))
    overnight = load_spec(str(root / "examples" / "overnight-45.yaml"))
    gpus = collections.Counter(tensor_parallel_size(m) for m in overnight.models if m.kind not in ("length", "random"))
    assert gpus == {1: 30, 2: 10, 8: 5}


def test_model_suites_filter() -> None:
    doc = {"suites": ["rewardbench", "rm-bench"],
           "models": [{"name": "length"}, {"name": "random", "suites": ["rm-bench"]}]}
    spec = spec_from_dict(doc)
    assert spec.models[0].suites is None and spec.models[0].runs_on("rewardbench")
    assert spec.models[1].suites == ("rm-bench",) and not spec.models[1].runs_on("rewardbench")
    assert spec.to_dict()["models"][1]["suites"] == ["rm-bench"]
    assert spec.models[1].settings_hash == spec_from_dict({"suites": ["rm-bench"], "models": ["random"]}).models[
        0].settings_hash  # where a model runs does not change its numbers
    with pytest.raises(SpecError, match=r"models\[1\]\.suites.*not suites of this spec: \['rewardbench2'\]"):
        spec_from_dict({**doc, "models": [{"name": "length"}, {"name": "random", "suites": ["rewardbench2"]}]})
    with pytest.raises(SpecError, match=r"models\[0\]\.suites"):
        spec_from_dict({**doc, "models": [{"name": "length", "suites": "rm-bench"}]})


def test_a_pairwise_judge_limited_to_pair_suites_plans_no_pool_units(shared_data) -> None:
    """Without `suites:` a pairwise judge on a 4-candidate pool is a spec error; with it, the pool is skipped."""
    from rmorch.orchestrator.plan.units import load_suite, make_units

    doc = {"suites": [{"name": "rewardbench", "data": str(shared_data / "rewardbench"), "limit_per_subset": 1},
                      {"name": "gsm8k-bon", "data": str(shared_data / "gsm8k"), "limit_per_subset": 3}],
           "models": ["length", {"name": "j", "kind": "judge", "path": "builtin:smollm2-135m-instruct",
                                 "protocol": "pairwise"}]}
    spec = spec_from_dict(doc)
    suites = [load_suite(s, spec.seed) for s in spec.suites]
    with pytest.raises(SpecError, match="pairwise"):
        make_units(spec, suites)
    doc["models"][1]["suites"] = ["rewardbench"]
    spec = spec_from_dict(doc)
    units = make_units(spec, suites)
    assert {(u.model, u.suite) for u in units} == {("length", "rewardbench"), ("length", "gsm8k-bon"),
                                                   ("j", "rewardbench")}
