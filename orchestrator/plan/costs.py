"""How long work will take: the scheduler's cost model.

A unit's cost is `tokens x params` (tokens estimated as characters / 4, params in billions): the compute a
transformer spends on it, up to a constant. The size hint of a model comes, in order, from its kind when it knows
(`Capabilities.param_count`), from the `config.json` of its local model directory (`Capabilities.weights`, the main
model; a built-in's converted copy once made), from the spec's `params_b`, from the size a hub id names
('...-72B-Instruct'), else from a default by kind (baselines cost next to nothing).

Seconds come from measurement as the sweep runs: per model, scoring seconds per cost unit over its finished units
(one replica); a model with nothing finished yet borrows the pooled GPU-seconds per cost unit of all finished units,
divided by its GPUs per replica (the same hardware does the same FLOPs per second whichever model runs). Load times
likewise: a model's own once one replica has loaded, else the mean of all loads seen. Before anything is measured,
`known` is False and only relative estimates (which model has the most work) are meaningful.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from rmorch.actors import get_kind
from rmorch.actors.backends.builtin import default_cache_dir, is_builtin
from rmorch.core.model_spec import ModelSpec

CHARS_PER_TOKEN = 4.0
DEFAULT_PARAMS_B = 7.0  # a typical reward model or judge, when nothing else says
NO_GPU_PARAMS_B = 0.001  # baselines and API clients: negligible compute per token
RECENT_LOADS = 5


def param_hint_b(spec: ModelSpec) -> float:
    """The model's size in billions of parameters, as well as the driver can tell without loading it."""
    kind = get_kind(spec.kind)
    caps = kind.capabilities(spec.config)
    if caps.param_count:
        return float(caps.param_count) / 1e9
    if caps.weights:
        n = params_from_config_json(_local_dir(caps.weights[0]))
        if n:
            return n / 1e9
    if spec.resources.params_b is not None:
        return spec.resources.params_b
    named = params_from_name(caps.weights[0]) if caps.weights else None
    if named:
        return named
    return DEFAULT_PARAMS_B if kind.uses_gpu else NO_GPU_PARAMS_B


def params_from_name(path: str) -> float | None:
    """Billions of parameters as a hub id usually says them ('Qwen/Qwen2.5-72B-Instruct' -> 72, 'org/x-8x7b' -> 56,
    'Llama-3.2-1B' -> 1, 'internlm2-1_8b' -> 1.8); None when it says none."""
    name = path.rsplit("/", 1)[-1]
    moe = re.search(r"(?<![\d.])(\d+)x(\d+(?:\.\d+)?)[bB](?![a-zA-Z])", name)
    if moe:
        return float(moe.group(1)) * float(moe.group(2))
    found = re.findall(r"(?<![\d._])(\d+(?:[._]\d+)?)[bB](?![a-zA-Z])", name)  # 1_8b: 1.8
    return float(found[-1].replace("_", ".")) if found else None


def _local_dir(path: str) -> str:
    """Where a model's files are without fetching anything: a built-in's converted copy (if made), else the path."""
    if is_builtin(path):
        return os.path.join(default_cache_dir(), "models", path[len("builtin:"):])
    return os.path.expanduser(path)


def params_from_config_json(model_dir: str) -> float | None:
    """Approximate parameter count of a local Hugging Face model directory from its config.json (decoder
    transformers: embeddings + per layer attention and MLP), or None when there is none to read."""
    try:
        with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        return None
    cfg = cfg.get("text_config", cfg) if isinstance(cfg, dict) else {}
    try:
        hidden = int(cfg["hidden_size"])
        layers = int(cfg["num_hidden_layers"])
    except (KeyError, TypeError, ValueError):
        return None
    inter = int(cfg.get("intermediate_size") or 4 * hidden)
    vocab = int(cfg.get("vocab_size") or 0)
    heads = int(cfg.get("num_attention_heads") or 1)
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // max(heads, 1))
    attention = hidden * head_dim * (2 * heads + 2 * kv_heads)
    mlp = 3 * hidden * inter
    experts = int(cfg.get("num_local_experts") or cfg.get("num_experts") or 1)
    return float(layers * (attention + experts * mlp) + vocab * hidden)


@dataclass
class CostModel:
    """Measured throughput and load times, turned into seconds estimates for the scheduler."""

    gpus: dict[str, float]  # model -> GPUs per replica (0 for CPU-only replicas)
    _cost: dict[str, float] = field(default_factory=dict)  # model -> cost units finished
    _seconds: dict[str, float] = field(default_factory=dict)  # model -> scoring seconds of those units
    _loads: dict[str, list[float]] = field(default_factory=dict)
    _recent: list[float] = field(default_factory=list)  # every load, in the order they finished

    def record_unit(self, model: str, cost: float, seconds: float) -> None:
        self._cost[model] = self._cost.get(model, 0.0) + cost
        self._seconds[model] = self._seconds.get(model, 0.0) + seconds

    def record_load(self, model: str, seconds: float) -> None:
        self._loads.setdefault(model, []).append(seconds)
        self._recent.append(seconds)

    @property
    def known(self) -> bool:
        """True once some GPU unit has finished: estimates are then in seconds, not only relative."""
        return any(c > 0 and self.gpus.get(m, 0.0) > 0 for m, c in self._cost.items())

    def measured(self, model: str) -> bool:
        """Whether some unit of `model` itself has finished (its seconds per cost unit are its own)."""
        return self._cost.get(model, 0.0) > 0 and self._seconds.get(model, 0.0) > 0

    def seconds_per_cost(self, model: str) -> float:
        """Scoring seconds of one replica of `model` per cost unit (relative units until `known`)."""
        cost = self._cost.get(model, 0.0)
        if cost > 0 and self._seconds.get(model, 0.0) > 0:
            return self._seconds[model] / cost
        width = max(self.gpus.get(model, 0.0), 1.0)
        on_gpus = self.gpus.get(model, 0.0) > 0
        peers = [m for m, c in self._cost.items() if c > 0 and (self.gpus.get(m, 0.0) > 0) == on_gpus]
        total_cost = sum(self._cost[m] for m in peers)
        if total_cost <= 0:
            return 1.0 / width
        pooled = sum(self._seconds[m] * max(self.gpus.get(m, 0.0), 1.0) for m in peers) / total_cost
        return pooled / width

    def load_seconds(self, model: str) -> float:
        """Expected seconds from requesting a replica of `model` to its first unit (0 before any load is seen):
        its own latest load, else the mean of the latest loads of any model. Latest, because the first loads of a
        sweep all start together and wait for each other (process starts, disks, downloads)."""
        own = self._loads.get(model)
        if own:
            return own[-1]
        recent = self._recent[-RECENT_LOADS:]
        return sum(recent) / len(recent) if recent else 0.0
