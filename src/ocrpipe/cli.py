"""The ``ocrpipe`` command line.

Exit codes: 0 all inputs processed; 1 at least one input was rejected (bad file: see stderr);
2 usage error; 3 the engine could not run (missing model or language data, internal failure).
Other areas add subcommands through modules listed in ``SUBCOMMAND_MODULES``, each with ``register``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ocrpipe.errors import EngineError, ErrorCode, InputError, OcrError
from ocrpipe.settings import EngineSettings, OcrSettings, add_flags, from_args, pipeline_config

if TYPE_CHECKING:
    import numpy as np

    from ocrpipe.document import Document
    from ocrpipe.engine.pipeline import Pipeline

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_ENGINE = 0, 1, 2, 3

SUBCOMMAND_MODULES: list[str] = ["ocrpipe.server.cli", "ocrpipe.evaluation.cli", "ocrpipe.server.security.cli",
                                  "ocrpipe.training.cli", "ocrpipe.templates.cli", "ocrpipe.client.cli",
                                  "ocrpipe.bulk.cli", "ocrpipe.cluster.cli"]

SAMPLE = Path(__file__).resolve().parent / "assets" / "sample_ko.png"


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    add_flags(p.add_argument_group("engine (each flag is also an OCRPIPE_<NAME> variable; flags win)"),
              EngineSettings)


def pipeline_from_args(args: argparse.Namespace) -> Pipeline:
    """Build a Pipeline from the engine options shared by several subcommands."""
    from ocrpipe.engine.pipeline import Pipeline

    return Pipeline(pipeline_config(from_args(EngineSettings, args)))


def _cmd_ocr(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ocrpipe.engine.pipeline import Pipeline
    from ocrpipe.export import render

    settings = from_args(OcrSettings, args)
    files = [Path(f) for f in args.files]
    if not files:
        files = [SAMPLE]
        print(f"ocrpipe: no file given, reading the bundled sample page {SAMPLE}", file=sys.stderr)
    if (settings.format == "pdf" or settings.pdfa) and not (settings.out and settings.format == "pdf"):
        raise OcrError(ErrorCode.INVALID_ARGUMENT, "--format pdf needs --out DIR (and --pdfa needs --format pdf)")
    pipeline = Pipeline(pipeline_config(settings))
    out_dir = settings.out
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    status = EXIT_OK
    progress = tqdm(files, unit="file", disable=len(files) < 2 or None, file=sys.stderr)
    for path in progress:
        progress.set_postfix_str(path.name, refresh=False)
        try:
            doc, traces = pipeline.run_traced(path, keep=settings.visualize or settings.format == "pdf")
        except InputError as exc:
            print(f"ocrpipe: {path}: error [{exc.code}]: {exc.message}", file=sys.stderr)
            status = max(status, EXIT_INPUT)
            continue
        if settings.format == "pdf" and out_dir is not None:  # checked above: pdf always has --out
            _write_pdf(path, [trace.image for trace in traces], doc, out_dir, pdfa=settings.pdfa)
            continue
        text = render.FORMATS[settings.format](doc)
        if out_dir:
            (out_dir / (path.stem + render.SUFFIXES[settings.format])).write_text(text, encoding="utf-8")
        else:
            if len(files) > 1 and settings.format == "text":
                text = f"==> {path} <==\n{text}"
            sys.stdout.write(text)
            sys.stdout.flush()
        if settings.visualize:
            vis_dir = out_dir or Path.cwd()
            for trace in traces:
                one = len(traces) == 1
                name = f"{path.stem}.vis.png" if one else f"{path.stem}.p{trace.index + 1}.vis.png"
                render.visualize(trace.image, trace.page).save(vis_dir / name)
                print(f"ocrpipe: wrote {vis_dir / name}", file=sys.stderr)
    return status


def _write_pdf(path: Path, images: list[np.ndarray], doc: Document, out_dir: Path, *, pdfa: bool) -> None:
    from ocrpipe.export.pdf import searchable_pdf

    target = out_dir / (path.stem + ".pdf")
    if target.resolve() == path.resolve():
        target = out_dir / (path.stem + ".ocr.pdf")
    target.write_bytes(searchable_pdf(path.read_bytes(), images, doc, pdfa=pdfa))
    print(f"ocrpipe: wrote {target}", file=sys.stderr)


def _cmd_models(args: argparse.Namespace) -> int:
    from ocrpipe.engine import runtime

    pipeline = pipeline_from_args(args)
    in_use = {m.name for m in pipeline.models()}
    rows = [m.to_dict() for m in pipeline.models()]
    rows += [s.info().to_dict() for s in runtime.load_manifest().values() if s.name not in in_use]
    for row in rows:
        mark = "*" if row["name"] in in_use else " "
        print(f"{mark} {row['name']:<22} {row['kind']:<12} {row['sha256']}  {row['source']}")
    print("(* = used by the current configuration)")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocrpipe", description="OCR for Korean and English documents.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ocr", help="read images or PDFs and print or save their text")
    p.add_argument("files", nargs="*", metavar="FILE", help="images or PDFs (default: a bundled sample page)")
    add_flags(p.add_argument_group("output"), OcrSettings, skip=EngineSettings.model_fields)
    _add_engine_options(p)
    p.set_defaults(func=_cmd_ocr)

    p = sub.add_parser("models", help="list models in use with their sha256 and source")
    _add_engine_options(p)
    p.set_defaults(func=_cmd_models)

    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line parsed; images may also follow an option (``run a.png --templates DIR b.png``)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "images", None), list) and not any(e.startswith("-") for e in extra):
        args.images += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"ocrpipe: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return EXIT_INPUT
    except EngineError as exc:
        print(f"ocrpipe: engine error [{exc.code}]: {exc.message}", file=sys.stderr)
        return EXIT_ENGINE
    except OcrError as exc:
        print(f"ocrpipe: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
