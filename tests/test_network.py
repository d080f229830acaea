"""Network surfaces: what the local Ray instance of `rmorch sweep` listens on.

The instance is started exactly as a sweep starts it (`rmorch.orchestrator.sweep._init_ray`), with worker processes and an
actor running; then every TCP socket that the driver or any process below it (GCS, raylet, agents, dashboard and
autoscaler processes, workers) listens on, and every UDP socket they hold, is listed with psutil. All must be on a
loopback address. For comparison, a plain `ray.init(address="local", _node_ip_address="127.0.0.1")` is started too
and its non-loopback sockets are listed: Ray on Linux replaces 127.0.0.1 by the machine's interface address and
listens on every interface, which `_init_ray` avoids. The tables are printed (`pytest -s`).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

import psutil
import pytest

from rmorch.orchestrator.sweep import _RAY_CLUSTER_SWITCH, RayOptions, _init_ray


def listening() -> list[dict[str, Any]]:
    """Listening TCP sockets and bound UDP sockets of this process and all its descendants."""
    me = psutil.Process()
    rows = []
    for proc in [me, *me.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="inet")
            name = proc.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for c in conns:
            tcp_listen = c.type == socket.SOCK_STREAM and c.status == psutil.CONN_LISTEN
            udp = c.type == socket.SOCK_DGRAM
            if tcp_listen or udp:
                rows.append({"pid": proc.pid, "process": name, "proto": "tcp" if tcp_listen else "udp",
                             "ip": c.laddr.ip, "port": c.laddr.port})
    return sorted(rows, key=lambda r: (r["process"], r["port"]))


def is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # ::ffff:127.0.0.1 (a dual-stack socket bound to 127.0.0.1)
    return addr.is_loopback


def table(rows: list[dict[str, Any]]) -> str:
    return "\n".join(f"{r['proto']} {r['ip']:>18}:{r['port']:<6} {r['process']} (pid {r['pid']})" for r in rows)


def _exercise(ray: Any) -> Any:
    """Start workers and an actor, like a sweep's replicas; returns the actor (alive while the caller holds it)."""

    @ray.remote
    def pid() -> int:
        return os.getpid()

    @ray.remote
    class Replica:
        def pid(self) -> int:
            return os.getpid()

    replica = Replica.remote()
    ray.get([replica.pid.remote(), *[pid.remote() for _ in range(2)]])
    return replica


@pytest.fixture
def fresh_ray():
    import ray

    if ray.is_initialized():
        ray.shutdown()
    yield ray
    ray.shutdown()


def test_a_sweeps_local_ray_listens_on_loopback_only(fresh_ray) -> None:
    from ray._private import ray_constants

    before = (ray_constants.ENABLE_RAY_CLUSTER, os.environ.get(_RAY_CLUSTER_SWITCH))
    assert _init_ray(RayOptions(num_cpus=1)) is None  # no dashboard unless asked for
    assert (ray_constants.ENABLE_RAY_CLUSTER, os.environ.get(_RAY_CLUSTER_SWITCH)) == before  # restored
    replica = _exercise(fresh_ray)
    rows = listening()
    print("\n" + table(rows))
    processes = {r["process"] for r in rows}
    # the servers this is about are really there (so an empty or partial listing cannot pass)
    assert {"gcs_server", "raylet", "ray::Replica", "ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= processes, \
        processes
    del replica
    assert len(rows) >= 8, table(rows)
    exposed = [r for r in rows if not is_loopback(r["ip"])]
    assert not exposed, "listening beyond loopback:\n" + table(exposed)
    assert {n["NodeManagerAddress"] for n in fresh_ray.nodes()} == {"127.0.0.1"}


def test_the_dashboard_only_when_asked_and_on_its_host(fresh_ray) -> None:
    url = _init_ray(RayOptions(num_cpus=1, dashboard=True))
    assert url is not None and url.startswith("http://127.0.0.1:"), url
    port = int(url.rsplit(":", 1)[1])
    rows = listening()
    assert any(r["port"] == port and r["ip"] == "127.0.0.1" for r in rows), table(rows)
    exposed = [r for r in rows if not is_loopback(r["ip"])]
    assert not exposed, "listening beyond loopback:\n" + table(exposed)


def test_plain_ray_init_would_listen_on_every_interface(fresh_ray) -> None:
    """What `_init_ray` avoids: Ray's default on Linux (skipped where that default is loopback anyway)."""
    from ray._private import ray_constants, services

    if not ray_constants.ENABLE_RAY_CLUSTER:
        pytest.skip("Ray keeps 127.0.0.1 by default on this platform")
    fresh_ray.init(address="local", num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1",
                   log_to_driver=False, logging_level="ERROR")
    node_ip = services.get_node_ip_address()
    if is_loopback(node_ip):
        pytest.skip("this machine has no interface address besides loopback")
    replica = _exercise(fresh_ray)
    rows = listening()
    del replica
    exposed = [r for r in rows if not is_loopback(r["ip"])]
    print(f"\nnode address {node_ip}; sockets beyond loopback:\n" + table(exposed))
    assert {r["process"] for r in exposed} >= {"gcs_server", "raylet"}
    assert all(r["ip"] in ("0.0.0.0", "::", node_ip) for r in exposed), table(exposed)
