"""Tournaments on a Ray cluster, when one machine is not enough.

Each Ray task races a batch of tracks with the same engine code as the local path
(`engine.race.tournament.race_tracks`: its own batched onnxruntime session and its own
in-process environments), and the driver gathers the results by track. A duel's result
depends only on its track, knobs and weights, never on the batch or the machine's load,
so a tournament on Ray gives the per-track results of the local run (on machines of the
same CPU kind: see docs/determinism.md).

A task whose worker dies (killed, out of memory, a node lost) is run again by Ray
(`max_retries`); results are keyed by batch, so every track appears once. A head that
cannot be reached is reported within CONNECT_TIMEOUT seconds, naming the address.

Ray is optional: `pip install -e '.[cluster]'`. Start a cluster with `ray start --head`
on one machine and `ray start --address HEAD:6379` on the others (each with vmc-duel
installed at the same path), then `vmc-duel tournament --backend ray --address auto`.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Callable
from typing import Any

INSTALL = "pip install -e '.[cluster]'"
CONNECT_TIMEOUT = 5.0  # s to reach a head given as HOST:PORT
MAX_RETRIES = 3  # times Ray runs a task again after its worker died
TASKS_PER_CPU = 2  # batches per CPU of the cluster: enough to keep every CPU busy to the end


class ClusterError(RuntimeError):
    """Ray is missing, or its cluster cannot be reached."""


def _ray():
    try:
        import ray
    except ModuleNotFoundError:
        raise ClusterError(f"--backend ray needs Ray: {INSTALL}") from None
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Join the Ray cluster at `address` ("auto": the one `ray start` runs on this machine;
    "HOST:PORT": a head elsewhere; None: start a local one with `num_cpus`). Returns the ray module."""
    ray = _ray()
    if address not in (None, "auto"):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ClusterError(f"Ray address {address!r}: expected HOST:PORT (the head's GCS port, 6379 by default) "
                               "or auto")  # fmt: skip
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
        except OSError as e:
            raise ClusterError(f"the Ray head at {address} cannot be reached ({e}); start it there with "
                               f"`ray start --head --port {port}`") from None  # fmt: skip
    if ray.is_initialized():  # this process joined a cluster already
        return ray
    try:
        if address is None:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level="warning")
        else:
            ray.init(address=address, log_to_driver=False, logging_level="warning")
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = "on this machine (address auto)" if address == "auto" else f"at {address}"
        raise ClusterError(f"no Ray cluster {where}: {e}; start one with `ray start --head`") from None
    return ray


def status_line(ray: Any) -> str:
    """Like `ray status`, in one line: nodes and CPUs in the cluster, CPUs free now."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources().get("CPU", 0)
    free = ray.available_resources().get("CPU", 0)
    return f"Ray: {len(nodes)} node{'s' if len(nodes) != 1 else ''}, {total:g} CPUs ({free:g} free)"


def race_on_ray(seeds: list[int], batch: int, race: Callable, common: dict[str, Any],
                on_batch: Callable[[int], None] | None = None) -> tuple[list[dict], list[dict], str]:  # fmt: skip
    """Race `seeds` as Ray tasks of at most `batch` tracks, each `race(chunk, **common, workers=0,
    threads=1)` on one CPU. on_batch(tracks_done) as results arrive. Returns (per-track results
    in seed order, controller metadata, precision used)."""
    ray = _ray()
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    size = max(1, min(batch, math.ceil(len(seeds) / (TASKS_PER_CPU * cpus))))
    chunks = [seeds[lo : lo + size] for lo in range(0, len(seeds), size)]
    task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(race)
    refs = {task.remote(chunk, **common, workers=0, threads=1): k for k, chunk in enumerate(chunks)}
    parts: dict[int, list[dict]] = {}
    meta, precision = [], common.get("precision", "auto")
    pending, done = list(refs), 0
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for ref in ready:
            k = refs[ref]
            parts[k], meta, precision = ray.get(ref)
            done += len(chunks[k])
            if on_batch is not None:
                on_batch(done)
    return [r for k in range(len(chunks)) for r in parts[k]], meta, precision
