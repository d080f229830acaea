"""`rmorch sweep --address`: joining a running Ray cluster as users do, through the real CLI.

A real head (`ray start --head --port=P --node-ip-address=127.0.0.1 --block`, Ray 2.60) runs for the module in a
directory and process group of its own (its own ports, RAY_TMPDIR and HOME: no other Ray instance on this machine is
touched, and only its process group is killed). Its HOME holds ~/.ray/auth_token, so it starts with Ray's token
authentication on, as `ray start --head` does wherever a token is on hand. The CLI joins it with the token the
way each kind of user has it: the head's own ~/.ray/auth_token (same machine), RAY_ADDRESS + RAY_AUTH_TOKEN (what a
KubeRay RayJob with authOptions sets), `--address auto` + RAY_AUTH_TOKEN_PATH. A wrong token, no token, and an
address where nothing listens fail within seconds, naming the address; a port that accepts connections but never
answers as a GCS is given up after join.ANSWER_S; Ctrl-C and SIGTERM end a join at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA

BIN = Path(sys.executable).parent
FAST_FAIL_S = 15.0  # the brief's bound for a failed join, CLI start-up included
RAY_ENV = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_TMPDIR")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Ray address or authentication setting (an earlier local ray.init in
    this process sets RAY_AUTH_MODE), plus extra."""
    env = {k: v for k, v in os.environ.items() if k not in RAY_ENV}
    return {**env, "HF_HUB_OFFLINE": "1", "COLUMNS": "250", "NO_COLOR": "1", **extra}


@dataclass
class Head:
    port: int
    token: str
    home: Path  # its HOME: .ray/auth_token
    ray_tmp: Path  # its RAY_TMPDIR: ray/ray_current_cluster names it for `auto`
    empty_home: Path  # a HOME without a token


@pytest.fixture(scope="module")
def head() -> Iterator[Head]:
    base = Path(tempfile.mkdtemp(prefix="rmaddr-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    home, ray_tmp, empty_home = base / "home", base / "t", base / "empty"
    for d in (home / ".ray", ray_tmp, empty_home):
        d.mkdir(parents=True)
    token = secrets.token_hex(32)
    (home / ".ray" / "auth_token").write_text(token)
    port = _free_port()
    cmd = [str(BIN / "ray"), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--block",
           "--num-cpus=1", "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
           f"--dashboard-port={_free_port()}", f"--ray-client-server-port={_free_port()}",
           f"--dashboard-agent-listen-port={_free_port()}"]
    log = open(base / "head.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=_clean_env(HOME=str(home), RAY_TMPDIR=str(ray_tmp)), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (ray_tmp / "ray" / "ray_current_cluster").exists():
            assert proc.poll() is None and time.monotonic() < deadline, (base / "head.log").read_text()[-3000:]
            time.sleep(0.2)
        assert "Token authentication is enabled" in (base / "head.log").read_text()
        yield Head(port, token, home, ray_tmp, empty_home)
    finally:
        _stop(proc)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def _stop(proc: subprocess.Popen) -> None:
    """End the head's process group (`ray start`, its GCS, raylet and agents; its workers exit with their raylet):
    SIGTERM, then SIGKILL for what is left after 2 s."""
    with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _sweep(out: Path, env: dict[str, str], *args: str, **popen: object) -> subprocess.Popen:
    cmd = [str(BIN / "rmorch"), "sweep", "--suite", "rewardbench", "--model", "length", "--data-dir",
           str(SHARED_DATA), "--limit-per-subset", "2", "--out", str(out), "--quiet", *args]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


def _run(out: Path, env: dict[str, str], *args: str) -> tuple[int, str, str, float]:
    t0 = time.monotonic()
    proc = _sweep(out, env, *args)
    stdout, stderr = proc.communicate(timeout=180)
    return proc.returncode, stdout, stderr, time.monotonic() - t0


# ---- joining --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["head's ~/.ray/auth_token", "RAY_ADDRESS + RAY_AUTH_TOKEN", "auto + token file"])
def test_joins_the_head_with_its_token(head: Head, how: str, tmp_path: Path) -> None:
    address = f"127.0.0.1:{head.port}"
    token_file = head.home / ".ray" / "auth_token"
    env, args = {
        # a user on the head's machine: `ray start --head` found (or wrote) ~/.ray/auth_token; RAY_AUTH_MODE unset
        "head's ~/.ray/auth_token": (_clean_env(HOME=str(head.home)), ["--address", address]),
        # the driver of a RayJob: KubeRay sets RAY_ADDRESS, and with authOptions RAY_AUTH_MODE and RAY_AUTH_TOKEN
        "RAY_ADDRESS + RAY_AUTH_TOKEN": (_clean_env(HOME=str(head.empty_home), RAY_ADDRESS=address,
                                                    RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=head.token), []),
        # `auto` finds the head through RAY_TMPDIR/ray/ray_current_cluster; the token comes from a file
        "auto + token file": (_clean_env(HOME=str(head.empty_home), RAY_TMPDIR=str(head.ray_tmp),
                                         RAY_AUTH_TOKEN_PATH=str(token_file)), ["--address", "auto"]),
    }[how]
    rc, stdout, stderr, _ = _run(tmp_path / "out", env, *args)
    assert rc == 0, stderr[-3000:]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["hardware"]["cluster"] == {"nodes": 1, "cpus": 1.0, "gpus": 0}  # the head's, not a local instance
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    assert [(e["model"], e["n_items"], e["n_errors"]) for e in board] == [("length", 46, 0)]
    assert head.token not in stdout + stderr


# ---- failing fast ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["wrong", "none"])
def test_a_refused_token_fails_fast_and_says_so(head: Head, token: str, tmp_path: Path) -> None:
    wrong = secrets.token_hex(32)
    env = _clean_env(HOME=str(head.empty_home), **({"RAY_AUTH_TOKEN": wrong} if token == "wrong" else {}))
    rc, stdout, stderr, seconds = _run(tmp_path / "out", env, "--address", f"127.0.0.1:{head.port}")
    assert rc == 2 and seconds < FAST_FAIL_S, (rc, seconds, stderr[-2000:])
    assert f"cannot join the Ray cluster at 127.0.0.1:{head.port}" in stderr, stderr[-2000:]
    assert "requires a Ray authentication token" in stderr and "RAY_AUTH_TOKEN" in stderr
    assert ("refused the token in RAY_AUTH_TOKEN" if token == "wrong" else "none was found here") in stderr
    assert wrong not in stdout + stderr and head.token not in stdout + stderr
    assert "Traceback" not in stderr and not (tmp_path / "out" / "results").exists()


def test_nothing_listening_fails_fast_naming_the_address(tmp_path: Path) -> None:
    port = _free_port()  # closed again: nothing listens there
    rc, _, stderr, seconds = _run(tmp_path / "out", _clean_env(), "--address", f"127.0.0.1:{port}")
    assert rc == 2 and seconds < FAST_FAIL_S, (rc, seconds, stderr[-2000:])
    assert f"cannot join the Ray cluster at 127.0.0.1:{port}" in stderr, stderr
    assert "nothing accepts connections there" in stderr and "is its GCS port" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, None], ids=["ctrl-c", "sigterm", "no-signal"])
def test_a_port_that_never_answers(sig: signal.Signals | None, tmp_path: Path) -> None:
    """A port that accepts connections but never answers as a GCS (the worst case: a firewall or another service):
    the join gives up after join.ANSWER_S, saying so; Ctrl-C and SIGTERM end it at once (0.3 s measured; Ray's own
    connection loop held them off for 20-30 s)."""
    from ray._private.services import resolve_ip_for_localhost

    from rmorch.orchestrator.join import ANSWER_S

    with socket.socket() as silent:
        silent.bind((resolve_ip_for_localhost("127.0.0.1"), 0))  # where Ray dials 127.0.0.1 to (this machine's IP)
        silent.listen(8)
        silent.settimeout(60)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        proc = _sweep(tmp_path / "out", _clean_env(), "--address", address)
        try:
            conns = [silent.accept()[0], silent.accept()[0]]  # the TCP probe, then Ray's GCS client
            t0 = time.monotonic()
            if sig is not None:
                time.sleep(0.5)
                t0 = time.monotonic()
                proc.send_signal(sig)
            _, stderr = proc.communicate(timeout=60)
            seconds = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for c in conns:
            c.close()
    if sig is None:
        assert proc.returncode == 2 and seconds < ANSWER_S + 3, (proc.returncode, seconds, stderr[-2000:])
        assert f"cannot join the Ray cluster at {address}" in stderr and "no Ray GCS answered" in stderr, stderr
    else:
        assert proc.returncode != 0 and seconds < 5, (proc.returncode, seconds, stderr[-2000:])
