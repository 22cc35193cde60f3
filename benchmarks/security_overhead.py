"""What authentication, scopes, tenants and the audit log cost per request.

Starts two real servers in this run with the same settings — one open (no keys, loopback) and one with
API keys enforced — and times, alternating rounds, the acknowledgement of ``POST /v1/jobs`` and the status
poll ``GET /v1/jobs/{id}`` (audited reads). Also times one key verification cold (scrypt) and cached.
Prints keyed/open ratios and writes ``benchmarks/results/security_overhead.json``.

    python benchmarks/security_overhead.py [--requests 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).resolve().parent / "results" / "security_overhead.json"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    env = {**os.environ, "OCRPIPE_THREADS": "1", "OMP_NUM_THREADS": "1"}
    log = open(data / "server.log", "ab")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen([sys.executable, "-m", "ocrpipe", "serve", "--port", str(port), "--data-dir",
                             str(data), "--job-workers", "0"], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start")


def png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 32), "white").save(buf, "PNG")
    return buf.getvalue()


def timed(client: httpx.Client, n: int, method: str, path: str, **kw: Any) -> tuple[list[float], list[str]]:
    times, ids = [], []
    for _ in range(n):
        t = time.perf_counter()
        resp = client.request(method, path, **kw)
        times.append((time.perf_counter() - t) * 1000)
        assert resp.status_code in (200, 202), resp.text
        if method == "POST":
            ids.append(resp.json()["id"])
    return times, ids


def pct(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2)


def key_verification_ms(data: Path) -> dict[str, float]:
    from ocrpipe.server.security.keys import KeyStore
    from ocrpipe.server.storage.db import get_engine

    store = KeyStore(get_engine(f"sqlite:///{data / 'ocrpipe.db'}"))
    _, key = store.create("bench-verify", "read")
    t = time.perf_counter()
    store.authenticate(key)
    cold = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    for _ in range(100):
        store.authenticate(key)
    return {"cold_scrypt_ms": round(cold, 2), "cached_ms": round((time.perf_counter() - t) * 10, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from ocrpipe.server.security.keys import KeyStore
    from ocrpipe.server.storage.db import get_engine, migrate

    tmp = Path(tempfile.mkdtemp(prefix="ocrpipe-secbench-"))
    (tmp / "open").mkdir()
    (tmp / "keyed").mkdir()
    engine = get_engine(f"sqlite:///{tmp / 'keyed' / 'ocrpipe.db'}")
    migrate(engine)
    _, key = KeyStore(engine).create("bench", "submit,read", rate_limit_per_min=1e9)
    engine.dispose()
    servers = {name: start(tmp / name) for name in ("open", "keyed")}
    clients = {"open": httpx.Client(base_url=servers["open"][1], timeout=60),
               "keyed": httpx.Client(base_url=servers["keyed"][1], timeout=60,
                                     headers={"Authorization": f"Bearer {key}"})}
    samples: dict[str, dict[str, list[float]]] = {n: {"ack": [], "poll": []} for n in clients}
    body = png()
    try:
        for c in clients.values():  # warm-up
            timed(c, 20, "GET", "/v1/jobs")
        for _ in range(args.rounds):
            for name, c in clients.items():
                acks, ids = timed(c, args.requests // 4, "POST", "/v1/jobs",
                                  files={"file": ("a.png", body, "image/png")})
                polls, _ = timed(c, args.requests, "GET", f"/v1/jobs/{ids[0]}")
                samples[name]["ack"] += acks
                samples[name]["poll"] += polls
    finally:
        for c in clients.values():
            c.close()
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(20)
    out: dict[str, Any] = {"requests_per_round": args.requests, "rounds": args.rounds}
    for kind in ("ack", "poll"):
        for name in clients:
            v = samples[name][kind]
            out[f"{kind}_{name}"] = {"p50_ms": pct(v, 50), "p99_ms": pct(v, 99), "n": len(v)}
        for q in ("p50", "p99"):
            ratio = out[f"{kind}_keyed"][f"{q}_ms"] / out[f"{kind}_open"][f"{q}_ms"]
            out[f"{kind}_{q}_ratio_keyed_vs_open"] = round(ratio, 2)
    out["key_verification"] = key_verification_ms(tmp / "keyed")
    print(json.dumps(out, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
