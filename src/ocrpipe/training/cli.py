"""``ocrpipe train``: synthetic samples, recogniser training and ONNX export (needs the ``train`` extra)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _recognizer(args: argparse.Namespace) -> int:
    from ocrpipe.training.train import TrainConfig, train

    config = TrainConfig.from_yaml(args.config)
    summary = train(config, Path(args.out), resume=args.resume, init=Path(args.init) if args.init else None,
                    max_minutes=args.max_minutes,
                    max_steps=args.max_steps, device=args.device,
                    log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
    (Path(args.out) / "history.json").write_text(json.dumps(summary["history"], indent=2))
    return 0


def _export(args: argparse.Namespace) -> int:
    from ocrpipe.training.export import export_onnx

    print(json.dumps(export_onnx(Path(args.checkpoint), Path(args.out), name=args.name), indent=2))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from ocrpipe.training.train import evaluate_checkpoint

    value, examples = evaluate_checkpoint(Path(args.checkpoint), seed=args.seed, size=args.n,
                                          max_width=args.max_width, max_chars=args.max_chars)
    print(json.dumps({"checkpoint": args.checkpoint, "seed": args.seed, "lines": args.n,
                      "max_width": args.max_width, "max_chars": args.max_chars, "cer": round(value, 4),
                      "examples": examples}, ensure_ascii=False, indent=2))
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from ocrpipe.training.quantize import check, load_jobs, quantize

    root = Path(args.config).resolve().parent.parent
    for job in load_jobs(args.config):
        if args.only and job.source not in args.only:
            continue
        out = quantize(job, root)
        print(json.dumps(check(job, out), indent=2), flush=True)
    return 0


def _dump(args: argparse.Namespace) -> int:
    from ocrpipe.synth.lines import dump_samples

    labels = dump_samples(Path(args.out), n=args.n, seed=args.seed)
    print(f"wrote {args.n} samples and {labels}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ocrpipe train …``."""
    p = subparsers.add_parser("train", help="train and export models (needs `pip install ocrpipe[train]`)")
    sub = p.add_subparsers(dest="train_command", required=True, metavar="WHAT")

    r = sub.add_parser("recognizer", help="train the CTC line recogniser on synthetic lines")
    r.add_argument("--config", required=True, help="YAML config, e.g. configs/rec_ko.yaml")
    r.add_argument("--out", default="runs/rec_ko", help="run folder for checkpoints (default runs/rec_ko)")
    r.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    r.add_argument("--init", metavar="CHECKPOINT",
                   help="start from these weights (a run's .pt checkpoint or an exported .onnx model) with a fresh "
                        "optimiser and schedule (a second phase)")
    r.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this much wall time")
    r.add_argument("--max-steps", type=int, help="stop after this many steps (default: the config's steps)")
    r.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    r.set_defaults(func=_recognizer)

    e = sub.add_parser("export", help="export a checkpoint to ONNX and verify it against torch")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--name", default="ko_rec")
    e.set_defaults(func=_export)

    v = sub.add_parser("validate", help="synthetic validation CER of a checkpoint (held-out seed)")
    v.add_argument("--checkpoint", required=True)
    v.add_argument("--seed", type=int, default=999)
    v.add_argument("--n", type=int, default=400)
    v.add_argument("--max-width", type=int, default=288)
    v.add_argument("--max-chars", type=int, default=18)
    v.set_defaults(func=_validate)

    q = sub.add_parser("quantize", help="int8 copies of the shipped models, calibrated on synthetic pages and lines")
    q.add_argument("--config", required=True, help="YAML config, e.g. configs/quantize_int8.yaml")
    q.add_argument("--only", action="append", metavar="MODEL", help="only this source model (repeatable)")
    q.set_defaults(func=_quantize)

    d = sub.add_parser("dump-samples", help="write synthetic training lines as PNGs for a person to look at")
    d.add_argument("--out", required=True)
    d.add_argument("--n", type=int, default=50)
    d.add_argument("--seed", type=int, default=12345)
    d.set_defaults(func=_dump)
