"""Joining a Ray cluster, or starting a local Ray instance, the way ferkit does it.

* No address: a local instance for this run only (stopped at its end), bound to 127.0.0.1, without the dashboard,
  with ``num_cpus`` CPUs (default: all of them) and a small object store (ferkit moves paths and rows, not images).
* ``auto`` or ``HOST:PORT``: an existing cluster (``ray start --head`` on one machine, ``ray start --address``
  on the others). A cluster on this machine started with ``--node-ip-address 127.0.0.1`` (only reachable from
  here) is joined on the loopback too, with the token of ``~/.ray/auth_token`` when the cluster has one (Ray's own
  rule for a local cluster found by ``auto``).

Usage statistics are never sent (``RAY_USAGE_STATS_ENABLED=0``). Ray is imported here, never at ferkit's import.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

LOCAL = "local"  # the value of `--ray` given without an address
OBJECT_STORE_BYTES = 256 * 1024 * 1024  # of a local instance: blocks of paths and rows, a few MB in flight
# Ray's switch between a single-machine (loopback) node and a cluster node; read when ray is imported
_LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class RayUnavailable(ValueError):
    """Ray is not installed; the message says what to install."""


def require_ray() -> None:
    """Raise :class:`RayUnavailable` unless Ray Data can be imported (checked without importing Ray: its
    settings are environment variables read at import, set by :func:`connect` first)."""
    import importlib.util

    missing = [m for m in ("ray", "pyarrow", "pandas") if importlib.util.find_spec(m) is None]
    if missing:
        raise RayUnavailable(f"--ray needs Ray Data: pip install 'ferkit[ray]' (missing: {', '.join(missing)})")


def is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
    return host in ("localhost", "::1") or host.startswith("127.")


def _auto_address() -> str | None:
    """The address ``ray.init("auto")`` will use: RAY_ADDRESS, else the latest cluster started on this machine."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    try:
        return (Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster").read_text().strip() or None
    except OSError:
        return None


def _use_loopback() -> None:
    os.environ[_LOOPBACK_SWITCH] = "0"
    import sys

    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:  # ray imported before us: the same switch, already read
        constants.ENABLE_RAY_CLUSTER = False


def _check_listening(address: str, timeout: float = 5.0) -> None:
    """Fail at once, naming the address, when nothing listens there (Ray itself retries for many minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as e:
        raise RayUnavailable(f"--ray {address}: no Ray cluster answers there ({e.strerror or e}); start one with "
                             "`ray start --head --port PORT`, or give --ray alone for a local instance") from None


@dataclass
class Connection:
    address: str  # what was joined ("local instance" for a local one)
    started: bool  # this process started it (and disconnect() stops it)
    cpus: float  # CPUs of the cluster when joined


def connect(address: str | None = None, num_cpus: int | None = None, verbose: bool = False) -> Connection:
    """Join the cluster at ``address`` (``"auto"`` or ``HOST:PORT``) or, for ``None``/``"local"``, start a
    local instance; a Ray already initialised in this process is used as it is."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    local = address in (None, LOCAL)
    target = _auto_address() if address == "auto" else address
    if local or (target and is_loopback(target)):
        _use_loopback()
        token = Path.home() / ".ray" / "auth_token"
        if not local and "RAY_AUTH_MODE" not in os.environ and (token.is_file() or os.environ.get("RAY_AUTH_TOKEN")):
            os.environ["RAY_AUTH_MODE"] = "token"
    require_ray()
    if target and not local and "://" not in target:
        _check_listening(target)
    import ray
    import ray.data  # noqa: F401 - here, once the environment is set

    quiet = logging.INFO if verbose else logging.WARNING
    if ray.is_initialized():
        return Connection("the Ray of this process", False, ray.cluster_resources().get("CPU", 1.0))
    logging.getLogger("ray").setLevel(quiet)
    # "token authentication is enabled" for the instance we start: a notice, said at every run
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.INFO if verbose else logging.ERROR)
    common = {"logging_level": quiet, "log_to_driver": verbose, "configure_logging": True}
    where = "a local Ray instance" if local else f"the Ray cluster at {target or address}"
    try:
        if local:
            ray.init(num_cpus=num_cpus, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES, **common)
        else:
            ray.init(address=address, **common)
    except Exception as e:  # Ray's own exceptions: the cause, in one line
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        verb = "start" if local else "join"
        raise RayUnavailable(f"--ray: cannot {verb} {where}: {lines[-1] if lines else type(e).__name__}") from e
    logging.getLogger("ray").setLevel(quiet)
    logging.getLogger("ray.data").setLevel(logging.INFO if verbose else logging.ERROR)  # notices, not errors
    return Connection(where, True, ray.cluster_resources().get("CPU", 1.0))


def disconnect(conn: Connection) -> None:
    """Leave the cluster (a local instance this process started is stopped with it)."""
    import ray

    if conn.started and ray.is_initialized():
        ray.shutdown()
