"""One registry type for model kinds and suites: names, did-you-mean, aliases, and plug-ins through entry points."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass

import pytest

from rmorch.actors import KINDS, ModelKind
from rmorch.actors.base import Capabilities, InferenceSettings
from rmorch.core.errors import SpecError, UserError
from rmorch.core.registry import Registry
from rmorch.suites import SUITES, Suite


class Base:
    name = "base"


def test_register_get_names_and_did_you_mean() -> None:
    reg: Registry[type[Base]] = Registry("widget", Base, name_attr="name", entry_points="rmorch.test-none")

    @reg.register
    class Alpha(Base):
        name = "alpha"

    assert reg.get("alpha") is Alpha and reg.find("beta") is None and reg.names() == ["alpha"]
    with pytest.raises(UserError, match=r"unknown widget 'alpah' \(did you mean 'alpha'\?\); known: alpha"):
        reg.get("alpah")
    assert reg.register(Alpha) is Alpha  # the same class twice is fine

    class Other(Base):
        name = "alpha"

    with pytest.raises(ValueError, match="widget 'alpha' registered twice"):
        reg.register(Other)


def test_aliases_are_made_by_the_registry() -> None:
    with SUITES.scoped():
        cls = SUITES.alias("my-prefs", "file")
        assert cls.name == "my-prefs" and issubclass(cls, SUITES.get("file")) and SUITES.get("my-prefs") is cls
        assert SUITES.alias("my-prefs", "file") is cls  # the same pair, the same class
        with pytest.raises(SpecError, match="'my-prefs' is already the name of a suite"):
            SUITES.alias("my-prefs", "rewardbench")
        with pytest.raises(SpecError, match="'rewardbench' is already the name of a suite"):
            SUITES.alias("rewardbench", "file")
    assert SUITES.find("my-prefs") is None  # scoped: gone again


def test_kinds_and_suites_come_from_entry_points(tmp_path, monkeypatch) -> None:
    """A package installed beside rmorch adds a kind and a suite through `rmorch.kinds` / `rmorch.suites`: a real
    distribution (dist-info with entry_points.txt) on sys.path, found by importlib.metadata."""
    (tmp_path / "rmorch_plugin_demo.py").write_text(textwrap.dedent("""
        from rmorch.actors.base import InferenceSettings, ModelKind, ScoreOutcome
        from rmorch.suites.rewardbench import RewardBench

        class Constant(ModelKind):
            kind = "plugin-constant"
            uses_gpu = False

            def settings(self):
                return InferenceSettings(backend="none")

            def score(self, requests):
                return [ScoreOutcome(score=1.0) for _ in requests]

        class MyBench(RewardBench):
            name = "plugin-bench"
    """))
    info = tmp_path / "rmorch_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rmorch-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[rmorch.kinds]\nconstant = rmorch_plugin_demo:Constant\n\n"
                                           "[rmorch.suites]\nmybench = rmorch_plugin_demo:MyBench\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    kinds = Registry("model kind", ModelKind, name_attr="kind", entry_points="rmorch.kinds")
    suites = Registry("suite", Suite, name_attr="name", entry_points="rmorch.suites")
    assert kinds.get("plugin-constant").__module__ == "rmorch_plugin_demo"
    assert suites.names() == ["plugin-bench"]
    sys.modules.pop("rmorch_plugin_demo", None)


def test_an_entry_point_of_the_wrong_type_is_named(tmp_path, monkeypatch) -> None:
    (tmp_path / "rmorch_plugin_bad.py").write_text("class NotAKind:\n    kind = 'x'\n")
    info = tmp_path / "rmorch_plugin_bad-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rmorch-plugin-bad\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[rmorch.kinds]\nbad = rmorch_plugin_bad:NotAKind\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    kinds = Registry("model kind", ModelKind, name_attr="kind", entry_points="rmorch.kinds")
    with pytest.raises(UserError, match=r"entry point rmorch.kinds:bad \(rmorch_plugin_bad:NotAKind\) is not a "
                                        r"ModelKind subclass"):
        kinds.names()
    sys.modules.pop("rmorch_plugin_bad", None)


@dataclass(frozen=True)
class _Cfg:
    pass


def test_capabilities_are_declared_by_each_kind() -> None:
    """What the driver reads of a kind: declared once, typed; weightless kinds need nothing."""
    from rmorch.orchestrator.spec.parse import spec_from_dict

    spec = spec_from_dict({"suites": ["rewardbench"], "models": [
        "length",
        {"name": "rm", "kind": "classifier", "path": "m", "backend": "vllm", "tensor_parallel_size": 2},
        {"name": "dpo", "kind": "implicit", "path": "p", "ref_path": "r", "allow_pickle": True},
        {"name": "dr", "kind": "density_ratio", "path": "s", "weak_path": "w", "trust_remote_code": True},
        {"name": "j", "kind": "judge", "path": "m", "lora": "adapter", "revision": "abc"},
        {"name": "api", "kind": "judge", "backend": "openai", "base_url": "http://127.0.0.1:1/v1", "path": "gpt"},
    ]})
    caps = {m.name: KINDS.get(m.kind).capabilities(m.config) for m in spec.models}
    assert caps["length"] == Capabilities()
    assert caps["rm"] == Capabilities(backend="vllm", tensor_parallel_size=2, weights=("m",))
    # batch_invariant: transformers backends by their fixed-row passes, vLLM judges by `deterministic` (default on),
    # a server never (what shares its batches is not ours to decide), vLLM pooling not stated
    assert caps["dpo"] == Capabilities(backend="transformers", weights=("p", "r"), allow_pickle=True,
                                       batch_invariant=True)
    assert caps["dr"] == Capabilities(backend="transformers", weights=("s", "w"), trust_remote_code=True,
                                      batch_invariant=True)
    assert caps["j"] == Capabilities(backend="vllm", weights=("m",), adapters=("adapter",), revision="abc",
                                     batch_invariant=True)
    assert caps["api"] == Capabilities(backend="openai", batch_invariant=False)  # a model on a server
    reusable = {m.name: KINDS.get(m.kind).reusable_process(m.config) for m in spec.models}
    assert reusable == {"length": True, "rm": False, "dpo": True, "dr": False, "j": False, "api": False}

    class Plain(ModelKind):
        kind = "plain-test"

        def settings(self) -> InferenceSettings:
            return InferenceSettings(backend="none")

        def score(self, requests):  # pragma: no cover - never loaded
            return []

    assert Plain.capabilities(_Cfg()) == Capabilities() and Plain.reward_bench_identity({}) == ("Custom Classifier",
                                                                                                 None)
