"""A Ray cluster on this machine made of separate ``ray start`` processes (a head and workers on
loopback), for the tests and benchmarks and for trying the cluster commands on one machine.

Each node is ``ray start --block`` with its own ports and object store size, under one temporary folder of its
own, so it never meets another cluster on the same machine (``ray stop`` would stop every cluster of the
machine: nodes here are stopped through their own process tree, ``kill_node`` with SIGKILL as in a crash).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_command() -> str:
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


@dataclass
class Node:
    """One ``ray start`` process (and, in its process group, the raylet and the node's workers)."""

    proc: subprocess.Popen[bytes]
    log: Path
    head: bool

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class LocalCluster:
    """``with LocalCluster(workers=1) as cluster: ... cluster.address ...``"""

    workers: int = 1
    cpus_per_node: float = 1
    object_store_mb: int = 100
    env: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = 120.0
    nodes: list[Node] = field(default_factory=list)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ocrray-", dir="/tmp")))
    port: int = field(default_factory=_free_port)

    @property
    def address(self) -> str:
        """``HOST:PORT`` of the head's GCS, what ``--ray`` and ``ray.init(address=...)`` take."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the head, then the workers, and wait until every node has joined."""
        self.nodes.append(self._launch(head=True))
        self.wait_nodes(1)
        for _ in range(self.workers):
            self.add_worker()

    def add_worker(self) -> Node:
        """One more worker node joining the head; returns once the cluster counts it."""
        alive = sum(n.alive() for n in self.nodes)
        node = self._launch(head=False)
        self.nodes.append(node)
        self.wait_nodes(alive + 1)
        return node

    def _launch(self, *, head: bool) -> Node:
        n = len(self.nodes)
        log = self.root / f"node-{n}.log"
        ports = ["--node-manager-port", str(_free_port()), "--object-manager-port", str(_free_port()),
                 "--min-worker-port", "0", "--max-worker-port", "0",
                 "--dashboard-agent-listen-port", str(_free_port()),
                 "--dashboard-agent-grpc-port", str(_free_port()),
                 "--metrics-export-port", str(_free_port()), "--runtime-env-agent-port", str(_free_port())]
        cmd = [_ray_command(), "start", "--block", "--node-ip-address", "127.0.0.1",
               "--num-cpus", str(self.cpus_per_node), "--num-gpus", "0",
               "--object-store-memory", str(self.object_store_mb * 1024 * 1024),
               "--disable-usage-stats", *ports]
        if head:
            cmd += ["--head", "--port", str(self.port), "--include-dashboard", "false",
                    "--ray-client-server-port", str(_free_port()), "--temp-dir", str(self.root / "ray")]
        else:
            cmd += ["--address", self.address]
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **self.env}
        with open(log, "ab") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        return Node(proc, log, head)

    def node_count(self) -> int:
        """Alive nodes as the head's GCS sees them (``ray.nodes()`` in a short-lived child)."""
        code = ("import ray,sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
                "print(sum(1 for n in ray.nodes() if n['Alive']))")
        try:
            res = subprocess.run([sys.executable, "-c", code, self.address], capture_output=True, text=True,
                                 timeout=60, env={**os.environ, **self.env})
        except subprocess.TimeoutExpired:
            return 0
        lines = res.stdout.strip().splitlines()
        return int(lines[-1]) if res.returncode == 0 and lines and lines[-1].isdigit() else 0

    def wait_nodes(self, count: int) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            dead = [n for n in self.nodes if not n.alive()]
            if dead and any(n is self.nodes[-1] for n in dead):
                raise RuntimeError(f"ray start exited:\n{self.nodes[-1].log.read_text(errors='replace')[-4000:]}")
            if self.node_count() >= count:
                return
            time.sleep(1.0)
        raise RuntimeError(f"the Ray cluster did not reach {count} node(s) in {self.start_timeout_s:g} s")

    def kill_node(self, node: Node) -> None:
        """SIGKILL the node's every process at once (``ray start``, raylet, object store, agents and the
        workers, which Ray starts in sessions of their own), as in a crash of that machine."""
        _kill_tree(node.proc.pid, signal.SIGKILL)
        _reap(node.proc)

    def stop(self) -> None:
        """Stop every node (workers first), then remove the cluster's folder."""
        trees = [(node, _tree(node.proc.pid)) for node in reversed(self.nodes)]
        for _node, pids in trees:  # SIGTERM: ray start --block stops its node's processes
            _signal(pids[:1], signal.SIGTERM)
        deadline = time.monotonic() + 15
        for node, pids in trees:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.proc.wait(max(0.1, deadline - time.monotonic()))
            _signal(pids + _tree(node.proc.pid), signal.SIGKILL)  # whatever of the node is left
            _reap(node.proc)
        self.nodes.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def _tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it (read from ``/proc``), parents first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _kill_tree(pid: int, sig: signal.Signals) -> None:
    _signal(_tree(pid), sig)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
