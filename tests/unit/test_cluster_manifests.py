"""cluster/: the KubeRay manifests, the image and the sweep they run.

Nothing here needs Kubernetes or Docker. The manifests are validated against KubeRay's own CustomResourceDefinitions
(v1.7.0, ../shared/data/kuberay-crds): each CRD's `openAPIV3Schema` is read as the API server applies it (unknown
fields are errors, as with kubectl's strict field validation; int-or-string, nullable, preserve-unknown-fields,
list-type map/set uniqueness, int32/int64 ranges), plus apiVersion, kind and the object's metadata, which the CRD
leaves to the API server. Then come rmorch's own rules: GPU groups scale from zero, secrets only through
secretKeyRef, one image and one Ray version everywhere, the RayJob's entrypoint is `rmorch sweep SPEC` with a SPEC
the image ships and load_spec accepts, and every model of that spec fits a worker group. Each check is also shown to
reject a broken manifest.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shlex
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml

from rmorch.actors import get_kind
from rmorch.orchestrator.spec.parse import load_spec
from tests.conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
APP = PurePosixPath("/app")  # the image's WORKDIR: /app/X is the repository's X

# ---- the schema: KubeRay's CRDs, read as the Kubernetes API server applies them -------------------------------

CRD_DIR = SHARED_DATA / "kuberay-crds"
CRD_FILES = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml"}
CRD_VERSION = "v1"
# Keys of a structural schema that JSON Schema either does not know or must not see as written (converted below).
_K8S_ONLY = {"description", "nullable", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
             "x-kubernetes-map-type", "x-kubernetes-embedded-resource"}
# The object's metadata is ObjectMeta, which the API server validates itself (the CRD says only `type: object`):
# the fields a manifest may write, and a name that KubeRay accepts (a DNS-1035 label; it derives longer names).
OBJECT_META: dict[str, Any] = {
    "type": "object", "required": ["name"], "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
    },
}


def structural_to_json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """A Kubernetes structural schema node as JSON Schema with the API server's meaning:
    - an object without `additionalProperties` takes only its `properties` (the server prunes other fields, and
      strict field validation turns each pruned field into an error), unless `x-kubernetes-preserve-unknown-fields`;
    - `x-kubernetes-int-or-string` takes an integer or a string; `nullable` also takes null;
    - `x-kubernetes-list-type` and `x-kubernetes-validations` stay, for the keywords of CRD_VALIDATOR."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _K8S_ONLY:
            continue
        if key == "properties":
            out[key] = {name: structural_to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = structural_to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [structural_to_json_schema(sub) for sub in value]
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("anyOf", None)
        out["type"] = ["integer", "string"]
    is_object = node.get("type") == "object" or "properties" in node
    if is_object and "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if node.get("nullable"):
        out = {"anyOf": [{"type": "null"}, out]}
    return out


def _list_type(validator, list_type: str, instance: Any, schema: dict[str, Any]):
    """x-kubernetes-list-type: a `set` holds no item twice, a `map` no two items with the same list-map-keys."""
    if not validator.is_type(instance, "array") or list_type not in ("set", "map"):
        return
    if list_type == "set":
        keys = [json.dumps(item, sort_keys=True) for item in instance]
    else:
        props = schema.get("items", {}).get("properties", {})
        names = schema["x-kubernetes-list-map-keys"]
        keys = [json.dumps([item.get(k, props.get(k, {}).get("default")) for k in names])
                for item in instance if isinstance(item, dict)]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        yield jsonschema.ValidationError(f"duplicate entries in a list of type {list_type}: {', '.join(dupes)}")


def _cel_rules(validator, rules: list[dict[str, Any]], instance: Any, schema: dict[str, Any]):
    """x-kubernetes-validations (CEL): `self == oldSelf` (immutability) holds on create; any other rule is not
    evaluated here, so a manifest that sets such a field fails instead of passing unchecked."""
    for rule in rules:
        if rule["rule"].replace(" ", "") != "self==oldSelf":
            yield jsonschema.ValidationError(f"a CEL rule this test cannot evaluate guards this field "
                                             f"({rule.get('message', rule['rule'])}); check it with "
                                             "`kubectl apply --dry-run=server` and extend the test")


CRD_VALIDATOR = jsonschema.validators.extend(jsonschema.Draft202012Validator, {
    "x-kubernetes-list-type": _list_type, "x-kubernetes-validations": _cel_rules})
FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("int32")(lambda v: not isinstance(v, int) or -2**31 <= v < 2**31)
FORMATS.checks("int64")(lambda v: not isinstance(v, int) or -2**63 <= v < 2**63)


@functools.cache
def crd_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a whole `kind` object: the CRD's openAPIV3Schema of CRD_VERSION (which the CRD must serve),
    with apiVersion and kind fixed and the metadata of OBJECT_META."""
    with open(CRD_DIR / CRD_FILES[kind], encoding="utf-8") as f:
        crd = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == CRD_VERSION]
    assert version["served"], f"{kind} {CRD_VERSION} is not served by this CRD"
    schema = structural_to_json_schema(version["schema"]["openAPIV3Schema"])
    schema["properties"].update(apiVersion={"const": f"{crd['spec']['group']}/{CRD_VERSION}"}, kind={"const": kind},
                                metadata=OBJECT_META)
    schema["required"] = sorted({"apiVersion", "kind", "metadata", "spec", *schema.get("required", [])})
    return schema


def schema_errors(doc: dict[str, Any]) -> list[str]:
    """What the API server would refuse in doc, one line per error (path: message), [] if it is valid."""
    kind = doc.get("kind")
    if kind not in CRD_FILES:
        return [f"kind: {kind!r} is not one of {sorted(CRD_FILES)}"]
    validator = CRD_VALIDATOR(crd_schema(kind), format_checker=FORMATS)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}" for e in errors]


# ---- loading and walking ---------------------------------------------------------------------------------------


def _load(name: str) -> dict[str, Any]:
    with open(CLUSTER / name, encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def raycluster() -> dict[str, Any]:
    return _load("raycluster.yaml")


@pytest.fixture(scope="module")
def rayjob() -> dict[str, Any]:
    return _load("rayjob.yaml")


def _cluster_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["rayClusterSpec"] if doc["kind"] == "RayJob" else doc["spec"]


def _groups(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(group name, group spec), the head as 'head'."""
    spec = _cluster_spec(doc)
    yield "head", spec["headGroupSpec"]
    for g in spec["workerGroupSpecs"]:
        yield g["groupName"], g


def _containers(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, group in _groups(doc):
        for c in group["template"]["spec"]["containers"]:
            yield name, c


def _gpus(container: dict[str, Any]) -> int:
    return int(container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))


def _cpus(container: dict[str, Any]) -> float:
    q = str(container["resources"]["limits"]["cpu"])
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


# ---- rmorch's rules ------------------------------------------------------------------------------------------

SECRETISH = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
LITERAL_SECRET = re.compile(r"\bhf_[A-Za-z0-9]{20,}|\bsk-[A-Za-z0-9_-]{20,}|\bAKIA[0-9A-Z]{16}\b")
REQUIRED_ENV = {"HF_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY"}


def cluster_problems(doc: dict[str, Any]) -> list[str]:
    """Rules the schema cannot say: autoscaling from zero, GPU groups, /dev/shm, secrets, one image."""
    problems = []
    spec = _cluster_spec(doc)
    if spec.get("enableInTreeAutoscaling") is not True:
        problems.append("enableInTreeAutoscaling must be true")
    head = spec["headGroupSpec"]
    if head.get("rayStartParams", {}).get("num-gpus") != "0":
        problems.append("head: rayStartParams num-gpus must be \"0\"")
    if head.get("serviceType", "ClusterIP") != "ClusterIP" or head.get("enableIngress"):
        problems.append("head: the dashboard must stay inside the cluster (ClusterIP, no ingress)")
    gpu_sizes = []
    for name, g in _groups(doc):
        if name == "head":
            continue
        lo, hi, n = g["minReplicas"], g["maxReplicas"], g.get("replicas", g["minReplicas"])
        if not lo <= n <= hi:
            problems.append(f"{name}: needs minReplicas <= replicas <= maxReplicas, got {lo}, {n}, {hi}")
        if lo != 0:
            problems.append(f"{name}: GPU groups scale from zero (minReplicas 0), got {lo}")
        pod = g["template"]["spec"]
        shm = {v["name"] for v in pod.get("volumes", []) if v.get("emptyDir", {}).get("medium") == "Memory"}
        for c in pod["containers"]:
            req, lim = c.get("resources", {}).get("requests", {}), c.get("resources", {}).get("limits", {})
            if "nvidia.com/gpu" not in lim:
                problems.append(f"{name}: worker container needs an nvidia.com/gpu limit")
            elif str(req.get("nvidia.com/gpu", lim["nvidia.com/gpu"])) != str(lim["nvidia.com/gpu"]):
                problems.append(f"{name}: nvidia.com/gpu requests must equal limits")
            gpu_sizes.append(_gpus(c))
            if not any(m["mountPath"] == "/dev/shm" and m["name"] in shm for m in c.get("volumeMounts", [])):
                problems.append(f"{name}: /dev/shm must be a memory-backed emptyDir (vLLM, NCCL)")
    if sorted(gpu_sizes) != [1, 8]:
        problems.append(f"worker groups must be one 1-GPU and one 8-GPU group, got GPUs {sorted(gpu_sizes)}")
    images = set()
    for name, c in _containers(doc):
        images.add(c["image"])
        if name == "head" and _gpus(c):
            problems.append("head: the head is CPU-only (no nvidia.com/gpu)")
        if "cpu" not in c.get("resources", {}).get("limits", {}):
            problems.append(f"{name}: container {c['name']} needs a cpu limit (Ray's num-cpus comes from it)")
        names = set()
        for var in c.get("env", []):
            names.add(var["name"])
            if "value" in var and "valueFrom" in var:  # pod validation (when KubeRay creates the pod), not the CRD's
                problems.append(f"{name}: env {var['name']} sets both value and valueFrom")
            if SECRETISH.search(var["name"]) and ("value" in var or "secretKeyRef" not in var.get("valueFrom", {})):
                problems.append(f"{name}: env {var['name']} must come from a secretKeyRef, never a literal value")
        missing = REQUIRED_ENV - names
        if missing:
            problems.append(f"{name}: env lacks {sorted(missing)}")
    for var in spec.get("autoscalerOptions", {}).get("env", []):
        if SECRETISH.search(var["name"]) and "secretKeyRef" not in var.get("valueFrom", {}):
            problems.append(f"autoscaler: env {var['name']} must come from a secretKeyRef")
    if len(images) != 1:
        problems.append(f"head and workers must run one image (one Ray version), got {sorted(images)}")
    return problems


def _dockerfile() -> tuple[str, list[tuple[list[str], str]]]:
    """The Dockerfile's text (continuation lines joined) and its COPY (sources, destination) pairs."""
    text = (CLUSTER / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    copies = []
    for line in joined.splitlines():
        parts = shlex.split(line, comments=False) if line.strip().upper().startswith("COPY ") else []
        if parts:
            args = [p for p in parts[1:] if not p.startswith("--")]
            copies.append((args[:-1], args[-1]))
    return joined, copies


def _in_image(repo_rel: str, copies: list[tuple[list[str], str]]) -> bool:
    """Whether the Dockerfile's COPY lines put the repository's file repo_rel at /app/repo_rel."""
    target = APP / repo_rel
    for sources, dest in copies:
        dest_path = PurePosixPath(dest) if dest.startswith("/") else APP / dest
        for src in sources:
            if (ROOT / src).is_dir():  # COPY dir DEST: the directory's contents land in DEST
                if dest_path in target.parents and (ROOT / src / target.relative_to(dest_path)).is_file():
                    return True
            else:
                placed = dest_path / PurePosixPath(src).name if dest.endswith("/") or len(sources) > 1 else dest_path
                if placed == target and PurePosixPath(src) == PurePosixPath(repo_rel):
                    return True
    return False


def rayjob_problems(doc: dict[str, Any]) -> list[str]:
    """The RayJob's own rules; the spec it runs must load and fit the cluster."""
    problems = []
    spec = doc["spec"]
    if spec.get("shutdownAfterJobFinishes") is not True:
        problems.append("shutdownAfterJobFinishes must be true (free the GPUs when the sweep ends)")
    if not spec.get("activeDeadlineSeconds"):
        problems.append("activeDeadlineSeconds must be set (a stuck sweep must not hold GPUs forever)")
    if spec.get("backoffLimit", 0) < 1:
        problems.append("backoffLimit >= 1: a retry on a fresh cluster resumes from the store")
    argv = shlex.split(spec["entrypoint"])
    if argv[:2] != ["rmorch", "sweep"] or len(argv) < 3:
        return problems + [f"entrypoint must be `rmorch sweep SPEC ...`, got {spec['entrypoint']!r}"]
    spec_path = PurePosixPath(argv[2])
    if APP not in spec_path.parents:
        return problems + [f"the entrypoint's spec {spec_path} is not under the image's {APP}"]
    repo_rel = str(spec_path.relative_to(APP))
    if not (ROOT / repo_rel).is_file():
        return problems + [f"the entrypoint's spec {repo_rel} does not exist in the repository"]
    _, copies = _dockerfile()
    if not _in_image(repo_rel, copies):
        problems.append(f"cluster/Dockerfile does not copy {repo_rel} to {spec_path}")
    sweep = load_spec(str(ROOT / repo_rel))  # validates every suite and model entry (SpecError otherwise)
    out = argv[argv.index("--out") + 1] if "--out" in argv else sweep.out
    if not re.match(r"^(s3|gs|gcs|abfs|az)://[^/]+/", out):
        problems.append(f"out must be object storage (a retry runs on a new cluster), got {out!r}")
    for s in sweep.suites:
        if s.data and not s.data.startswith("/"):
            problems.append(f"suite {s.name}: data {s.data!r} is relative to a job's working directory")
    workers = [(_gpus(c), _cpus(c)) for name, c in _containers(doc) if name != "head"]
    head_cpus = float(_cluster_spec(doc)["headGroupSpec"]["rayStartParams"].get("num-cpus", 0))
    for m in sweep.models:
        tp = int(getattr(m.config, "tensor_parallel_size", 1) or 1)
        cpus = m.resources.num_cpus
        if not get_kind(m.kind).uses_gpu:
            if cpus > head_cpus and not any(c >= cpus for _, c in workers):
                problems.append(f"model {m.name}: no node has {cpus:g} CPUs")
            continue
        gpus = m.resources.num_gpus
        if gpus is None:  # the cluster starts with no GPU node: the default would be 0 GPUs
            problems.append(f"model {m.name}: set num_gpus (an autoscaling cluster has no GPU when it starts)")
            continue
        if gpus < tp:
            problems.append(f"model {m.name}: num_gpus {gpus:g} < tensor_parallel_size {tp}")
        if not any(g >= gpus and c >= cpus for g, c in workers):
            problems.append(f"model {m.name}: no worker group holds {gpus:g} GPUs and {cpus:g} CPUs on one node")
    return problems


# ---- the tests -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_manifest_matches_schema_and_rules(name: str) -> None:
    doc = _load(name)
    assert schema_errors(doc) == []
    assert cluster_problems(doc) == []


def test_rayjob_runs_a_valid_sweep_that_fits(rayjob: dict[str, Any]) -> None:
    assert rayjob_problems(rayjob) == []


def test_rayjob_has_the_raycluster_groups(raycluster: dict[str, Any], rayjob: dict[str, Any]) -> None:
    """One definition of the cluster: the RayJob's differs only where its dashboard must be reachable."""
    job_spec = copy.deepcopy(rayjob["spec"]["rayClusterSpec"])
    cluster_spec = copy.deepcopy(raycluster["spec"])
    assert cluster_spec["headGroupSpec"]["rayStartParams"].pop("dashboard-host") == "127.0.0.1"
    job_spec["headGroupSpec"]["rayStartParams"].pop("dashboard-host")
    assert job_spec == cluster_spec


def test_no_literal_secret_anywhere() -> None:
    for path in sorted(CLUSTER.iterdir()):
        if path.is_file():
            assert not LITERAL_SECRET.search(path.read_text(encoding="utf-8")), path.name


def test_dockerfile_builds_what_the_cluster_runs(raycluster: dict[str, Any]) -> None:
    text, copies = _dockerfile()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.MULTILINE))
    assert args["RAY_VERSION"] == raycluster["spec"]["rayVersion"], "image Ray != rayVersion"
    assert re.search(r"^FROM \S+", text, re.MULTILINE)
    assert re.search(r"^WORKDIR /app\s*$", text, re.MULTILINE)
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must end as a non-root user"
    pip = [line for line in text.splitlines() if "pip install" in line]
    assert any(re.search(r"""["']?\.\[gpu[^\]]*\]["']?""", line) for line in pip), "pip install .[gpu]"
    assert any("ray[default]==${RAY_VERSION}" in line for line in pip), "pin the Ray of the base image"
    # what `pip install .` reads, and the packages pyproject names
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for needed in ("pyproject.toml", "README.md", *(f"{d}/__init__.py" for d in package_dirs.values())):
        assert _in_image(needed, copies), f"the Dockerfile does not copy {needed}"
    # nothing secret baked in
    for key in re.findall(r"^(?:ENV|ARG)\s+(\w+)", text, re.MULTILINE):
        assert not SECRETISH.search(key), f"{key} must not be set in the image"
    # the BuildKit ignore file lets every COPY source through
    ignore = (CLUSTER / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for sources, _ in copies:
        for src in sources:
            assert src.rstrip("/") in allowed, f"{src} is excluded by cluster/Dockerfile.dockerignore"


def test_raycluster_dashboard_is_local_only(raycluster: dict[str, Any]) -> None:
    assert raycluster["spec"]["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "127.0.0.1"


# ---- the checks reject broken manifests ------------------------------------------------------------------------


def _broken(doc: dict[str, Any], edit) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    edit(doc)
    return doc


def _worker(doc: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return _cluster_spec(doc)["workerGroupSpecs"][i]


def _head_env(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return _cluster_spec(doc)["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]


def _head(doc: dict[str, Any]) -> dict[str, Any]:
    return _cluster_spec(doc)["headGroupSpec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
@pytest.mark.parametrize("edit, path, expect", [
    # a misspelled field, at the top of a group and deep in a pod template: kubectl's strict validation refuses both
    (lambda d: _worker(d).update(minReplica=0), "workerGroupSpecs.0", "'minReplica' was unexpected"),
    (lambda d: _head(d).update(imagePullPolicyy="Always"), "containers.0", "'imagePullPolicyy' was unexpected"),
    (lambda d: _cluster_spec(d).update(enableInTreeAutoscale=True), "", "'enableInTreeAutoscale' was unexpected"),
    # wrong types and values
    (lambda d: _worker(d).update(maxReplicas="4"), "maxReplicas", "'4' is not of type 'integer'"),
    (lambda d: _worker(d).update(maxReplicas=2**31), "maxReplicas", "is not a 'int32'"),
    (lambda d: _worker(d)["rayStartParams"].update({"num-gpus": 1}), "num-gpus", "1 is not of type 'string'"),
    (lambda d: _head(d)["ports"][0].update(containerPort="6379"), "containerPort", "is not of type 'integer'"),
    (lambda d: _head(d)["resources"]["limits"].update(cpu="8 cores"), "limits.cpu", "does not match"),
    (lambda d: _head(d)["resources"]["limits"].update(cpu=[8]), "limits.cpu", "is not of type 'integer', 'string'"),
    (lambda d: _cluster_spec(d)["autoscalerOptions"].update(upscalingMode="Fast"), "upscalingMode", "is not one of"),
    (lambda d: _worker(d).pop("template"), "workerGroupSpecs.0", "'template' is a required property"),
    (lambda d: _head(d)["env"].append({"name": "HF_TOKEN", "value": "x"}), "env", "duplicate entries"),
    (lambda d: _cluster_spec(d).update(managedBy="someone"), "managedBy", "CEL rule"),
    # what the CRD leaves to the API server: apiVersion, kind, metadata
    (lambda d: d.update(apiVersion="ray.io/v1alpha1"), "apiVersion", "'ray.io/v1' was expected"),
    (lambda d: d["metadata"].update(name="rmorch_sweep"), "metadata.name", "does not match"),
    (lambda d: d["metadata"].update(label={"a": "b"}), "metadata", "'label' was unexpected"),
])
def test_schema_rejects(name: str, edit, path: str, expect: str) -> None:
    """The real manifest, loaded and broken in one place: the CRD validation names that place and the fault."""
    errors = schema_errors(_broken(_load(name), edit))
    assert any(path in e.split(": ", 1)[0] and expect in e for e in errors), errors


def test_kind_must_be_a_kuberay_one(rayjob: dict[str, Any]) -> None:
    assert schema_errors(_broken(rayjob, lambda d: d.update(kind="RayService"))) == [
        "kind: 'RayService' is not one of ['RayCluster', 'RayJob']"]
    errors = schema_errors(_broken(rayjob, lambda d: d.update(kind="RayCluster")))  # a RayJob's spec is no cluster's
    assert any("'entrypoint'" in e and "unexpected" in e for e in errors), errors


def test_structural_schema_semantics() -> None:
    """The Kubernetes extensions the KubeRay CRDs use, and preserve-unknown-fields (which v1.7.0 does not use)."""
    schema = structural_to_json_schema({"type": "object", "properties": {
        "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "closed": {"type": "object"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "maybe": {"type": "string", "nullable": True},
        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
    }})
    validator = CRD_VALIDATOR(schema, format_checker=FORMATS)

    def ok(doc: dict[str, Any]) -> bool:
        return validator.is_valid(doc)

    assert ok({"port": 80}) and ok({"port": "http"}) and not ok({"port": 1.5}) and not ok({"port": True})
    assert ok({"free": {"anything": {"goes": [1]}}})
    assert ok({"closed": {}}) and not ok({"closed": {"x": 1}})  # no properties, no preserve: every field is unknown
    assert ok({"labels": {"a": "b"}}) and not ok({"labels": {"a": 1}})
    assert ok({"maybe": None}) and ok({"maybe": "x"}) and not ok({"maybe": 1})
    assert ok({"tags": ["a", "b"]}) and not ok({"tags": ["a", "a"]})
    assert not ok({"typo": 1})


def _literal_token(d: dict[str, Any]) -> None:
    env = _head_env(d)
    env[:] = [v for v in env if v["name"] != "HF_TOKEN"] + [{"name": "HF_TOKEN", "value": "hf_x"}]


@pytest.mark.parametrize("edit, expect", [
    (lambda d: _worker(d).update(minReplicas=3, replicas=1, maxReplicas=4), "minReplicas <= replicas"),
    (lambda d: _worker(d).update(minReplicas=1, replicas=1), "scale from zero"),
    (_literal_token, "HF_TOKEN must come from a secretKeyRef"),
    (lambda d: _head_env(d).append({"name": "JUDGE_API_KEY", "valueFrom": {"configMapKeyRef": {
        "name": "c", "key": "k"}}}), "JUDGE_API_KEY must come from a secretKeyRef"),
    (lambda d: _worker(d, 1)["template"]["spec"].update(volumes=[]), "/dev/shm"),
    (lambda d: _worker(d, 1)["template"]["spec"]["containers"][0]["resources"]["limits"].update(
        {"nvidia.com/gpu": 4}), "one 1-GPU and one 8-GPU group"),
    (lambda d: _cluster_spec(d)["headGroupSpec"]["template"]["spec"]["containers"][0].update(image="other"),
     "one image"),
    (lambda d: _cluster_spec(d)["headGroupSpec"].update(serviceType="LoadBalancer"), "ClusterIP"),
    (lambda d: _head_env(d).append({"name": "X", "value": "1", "valueFrom": {"fieldRef": {}}}), "value and valueFrom"),
    (lambda d: _head(d)["resources"]["limits"].pop("cpu"), "needs a cpu limit"),
])
def test_rules_reject(raycluster: dict[str, Any], edit, expect: str) -> None:
    problems = cluster_problems(_broken(raycluster, edit))
    assert any(expect in p for p in problems), problems


def test_rayjob_rules_reject(rayjob: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def entry(value: str):
        return lambda d: d["spec"].update(entrypoint=value)

    for edit, expect in [
        (entry("python -m rmorch.orchestrator.cli sweep /app/cluster/sweep.yaml"), "entrypoint must be"),
        (entry("rmorch sweep /app/cluster/missing.yaml"), "does not exist"),
        (entry("rmorch sweep /app/cluster/sweep.yaml --out runs/local"), "object storage"),
        (entry("rmorch sweep /app/examples/default.yaml"), "does not copy"),
        (lambda d: d["spec"].update(shutdownAfterJobFinishes=False), "shutdownAfterJobFinishes"),
        (lambda d: d["spec"].update(backoffLimit=0), "backoffLimit"),
        (lambda d: d["spec"].pop("activeDeadlineSeconds"), "activeDeadlineSeconds"),
    ]:
        problems = rayjob_problems(_broken(rayjob, edit))
        assert any(expect in p for p in problems), (expect, problems)
    # a GPU model without num_gpus, and a TP-8 model too big for the groups, are refused
    spec = yaml.safe_load((CLUSTER / "sweep.yaml").read_text(encoding="utf-8"))
    spec["models"] += [{"name": "no-gpus", "kind": "classifier", "path": "org/rm"},
                       {"name": "too-big", "kind": "judge", "path": "org/judge", "tensor_parallel_size": 16,
                        "num_gpus": 16}]
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "sweep.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "_dockerfile",
                        lambda: ("", [(["cluster/sweep.yaml"], "./cluster/sweep.yaml")]))
    problems = rayjob_problems(rayjob)
    assert any("no-gpus: set num_gpus" in p for p in problems), problems
    assert any("too-big: no worker group holds 16 GPUs" in p for p in problems), problems
