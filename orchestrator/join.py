"""Joining a running Ray cluster (`rmorch sweep --address ADDR`, or RAY_ADDRESS as a RayJob sets it).

Before `ray.init` (which retries for minutes where nothing answers, and 20 s on a refused token), two bounded
checks, each failing with a message that names the address and what to look at:
1. a TCP connection to the GCS port (PROBE_S): is anything listening there?
2. the GCS's first answer (ANSWER_S): is it a Ray GCS, and does it accept us?

Ray's token authentication (on by default for clusters started with a token on hand, Ray >= 2.59): a head that asks
for a token gets the one Ray finds here, in Ray's own order: RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH names,
~/.ray/auth_token (where `ray start --head` on this machine found or wrote it). Ray itself turns token mode on only
for `auto`; rmorch also does for an explicit address, but only after the head asked for a token (so no token is sent
to a cluster that does not ask for one), and never against an explicit RAY_AUTH_MODE.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

import ray
from ray._private import services

from rmorch.core.errors import UserError, first_line

PROBE_S = 3.0  # TCP connect to the GCS port
ANSWER_S = 8.0  # the GCS's first answer (its cluster id), authentication included
AUTH_MODE = "RAY_AUTH_MODE"


def join_cluster(address: str, **init_kwargs: Any) -> None:
    """ray.init(address) after the checks above; UserError (naming the address) where it cannot join."""
    if address.startswith("ray://"):  # Ray Client: its own protocol on the client server's port
        _probe_tcp(address, address.removeprefix("ray://"))
        gcs = address
    else:
        gcs = _gcs_address(address)
        _probe_tcp(address, gcs)
        _check_gcs(address, gcs)
    try:
        ray.init(address=gcs, **init_kwargs)
    except (ConnectionError, RuntimeError, ray.exceptions.AuthenticationError) as e:
        raise UserError(f"cannot join the Ray cluster at {_shown(address, gcs)}: {first_line(e)}") from None


def _gcs_address(address: str) -> str:
    """HOST:PORT as ray.init will dial it: `auto` resolved (RAY_ADDRESS, then the cluster `ray start` last started
    here), a loopback host replaced by this machine's address (where Ray's servers listen)."""
    try:
        gcs = services.canonicalize_bootstrap_address(address)
    except ConnectionError as e:  # `auto` and no cluster found
        raise UserError(f"cannot join the Ray cluster at {address}: {e}") from None
    except ValueError:
        raise UserError(f"cannot join the Ray cluster at {address}: give HOST:PORT (the head's GCS port, 6379 "
                        "unless `ray start --head --port` said otherwise), `auto` or ray://HOST:PORT") from None
    if gcs is None:  # "local"
        raise UserError(f"--address {address}: not a cluster to join (leave --address out for a local instance)")
    return gcs


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _probe_tcp(address: str, gcs: str) -> None:
    try:
        host, port = _host_port(gcs)
        with socket.create_connection((host, port), timeout=PROBE_S):
            pass
    except ValueError:
        raise UserError(f"cannot join the Ray cluster at {address}: give HOST:PORT") from None
    except OSError as e:
        why = f"no answer within {PROBE_S:g} s" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise UserError(
            f"cannot join the Ray cluster at {_shown(address, gcs)}: nothing accepts connections there ({why}). "
            f"Check that the head is running (`ray status --address {gcs}` on it), that {port} is its GCS port "
            "(`ray start --head --port`, 6379 by default; not the dashboard's 8265 or the client's 10001), and that "
            "this machine can reach it (firewall, Kubernetes service)") from None


def _check_gcs(address: str, gcs: str) -> None:
    """The GCS answers and accepts us; token mode on where the head asks for a token and one is here."""
    error = _first_answer(gcs)
    if _refused_auth(error) and AUTH_MODE not in os.environ and _token_on_hand():
        _enable_token_mode()
        error = _first_answer(gcs)
    if error is None:
        return
    where = _shown(address, gcs)
    if isinstance(error, TimeoutError):
        raise UserError(f"cannot join the Ray cluster at {where}: something listens there but no Ray GCS answered "
                        f"within {ANSWER_S:g} s. Is {_host_port(gcs)[1]} the head's GCS port (6379 unless "
                        "`ray start --head --port` said otherwise)?")
    if _refused_auth(error):
        raise UserError(f"cannot join the Ray cluster at {where}: the head requires a Ray authentication token and "
                        f"{_token_problem()}. Set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH, a file) to the head's "
                        "token: `ray get-auth-token` on the head prints it")
    raise UserError(f"cannot join the Ray cluster at {where}: {first_line(error)}")


def _first_answer(gcs: str) -> BaseException | None:
    """None if the GCS at `gcs` answered (its cluster id), else the error; TimeoutError after ANSWER_S. The call runs
    in a daemon thread: Ray's client waits up to 40 s in C++, where Ctrl-C and SIGTERM could not reach it."""
    from ray._raylet import GcsClient

    outcome: list[BaseException | None] = []

    def ask() -> None:
        try:
            GcsClient(address=gcs)  # connects and fetches the cluster id
            outcome.append(None)
        except Exception as e:  # noqa: BLE001 - handed to the caller
            outcome.append(e)

    thread = threading.Thread(target=ask, name="rmorch-gcs-probe", daemon=True)
    thread.start()
    thread.join(ANSWER_S)
    return outcome[0] if outcome else TimeoutError(f"no answer within {ANSWER_S:g} s")


def _refused_auth(error: BaseException | None) -> bool:
    return isinstance(error, ray.exceptions.AuthenticationError) or "InvalidAuthToken" in str(error or "")


def _token_on_hand() -> bool:
    from ray._raylet import AuthenticationTokenLoader

    return bool(AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True))


def _enable_token_mode() -> None:
    """Token mode for this process (and what it starts), as Ray's own `auto` path does it."""
    from ray._raylet import AuthenticationTokenLoader, Config

    os.environ[AUTH_MODE] = "token"
    Config.initialize("")  # Ray's cached config reads RAY_AUTH_MODE again
    AuthenticationTokenLoader.instance().reset_cache()


def _token_problem() -> str:
    mode = os.environ.get(AUTH_MODE, "")
    if mode and mode.lower() != "token":
        return f"{AUTH_MODE}={mode} here (unset it, or set it to token)"
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "refused the token in RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return f"refused the token in {os.environ['RAY_AUTH_TOKEN_PATH']} (RAY_AUTH_TOKEN_PATH)"
    if _token_on_hand():
        return "refused this machine's ~/.ray/auth_token"
    return "none was found here (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token)"


def _shown(address: str, gcs: str) -> str:
    return address if address == gcs else f"{address} ({gcs})"
