"""The driver's item files (rmorch.orchestrator.plan.items): row ranges, shards, samples and the text-free scoring view give
exactly what the whole in-memory table gives."""

from __future__ import annotations

import os

from rmorch.orchestrator.plan import items as items_mod

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_items.py


def test_spool_directories_of_killed_drivers_are_removed(tmp_path, monkeypatch) -> None:
    import subprocess
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f"{items_mod._spool_tag()}{dead.pid}-abc"
    alive = tmp_path / f"{items_mod._spool_tag()}{os.getpid()}-abc"
    other = tmp_path / "rmorch-items-otherhost-1-abc"
    for d in (orphan, alive, other):
        d.mkdir()
    with items_mod.spool_directory() as spool:
        assert os.path.isdir(spool) and os.path.basename(spool).startswith(f"{items_mod._spool_tag()}{os.getpid()}-")
    assert not orphan.exists() and alive.exists() and other.exists() and not os.path.exists(spool)
