"""Service load test: one document per ``POST /v1/ocr`` vs ``POST /v1/batch_ocr``, same documents, same run.

    python benchmarks/service_load.py [FILES|DATASET_DIR ...] [--docs 16] [--clients 4] [--batch-size 8]
                                      [--rounds 2] [--server URL] [-- serve options...]

Without ``--server`` it starts ``ocrpipe serve`` on a free port (data in a temporary folder), waits until
``/readyz`` answers, runs the load test (the code behind ``ocrpipe bench --server``), stops the server,
prints the table and writes ``benchmarks/results/service_load.json``. Default input: the bundled sample page.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, extra: list[str], *, env: dict[str, str] | None = None,
                 timeout: float = 180) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m ocrpipe serve`` on a free port (its log in ``data_dir``); the process and its URL once ready."""
    import httpx

    port = _free_port()
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 -- owned by the child process
    cmd = [sys.executable, "-m", "ocrpipe", "serve", "--port", str(port), "--data-dir", str(data_dir), *extra]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((data_dir / "server.log").read_text(errors="replace")[-3000:])
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"server did not become ready in {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    from ocrpipe.evaluation.bench import collect_inputs
    from ocrpipe.evaluation.loadtest import format_load, load_test

    argv = sys.argv[1:] if argv is None else argv
    serve_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, serve_args = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*")
    p.add_argument("--docs", type=int, default=16)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds; medians are reported")
    p.add_argument("--limit", type=int, help="at most N distinct input files")
    p.add_argument("--api-key", default=os.environ.get("OCRPIPE_API_KEY"), help="bearer key (with --server)")
    p.add_argument("--server", help="use a running service instead of starting one")
    p.add_argument("--out", default=str(HERE / "results" / "service_load.json"))
    args = p.parse_args(argv)

    files = collect_inputs(args.inputs, args.limit)
    with tempfile.TemporaryDirectory(prefix="ocrpipe-load-") as tmp:
        proc = None
        url = args.server
        if url is None:
            proc, url = start_server(Path(tmp), serve_args)
        try:
            result = load_test(
                url,
                files,
                docs=args.docs,
                clients=args.clients,
                batch_size=args.batch_size,
                rounds=args.rounds,
                api_key=args.api_key,
            )
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)
    result["serve_args"] = serve_args
    result["cpus"] = len(os.sched_getaffinity(0))
    print(format_load(result))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
