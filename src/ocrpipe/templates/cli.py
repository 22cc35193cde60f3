"""``ocrpipe template new|check|match|run``: author and use fixed-layout templates from the command line.

- ``new REFERENCE --values VALUES.json --name NAME --out DIR``: make a template from one clean reference
  image and the values printed on it (field name → value as printed); writes ``DIR/NAME.yaml`` and
  ``DIR/NAME.png``, reads the reference again with it and exits 1 naming every value it did not reproduce.
- ``check TEMPLATE IMAGE [--out PNG]``: that template alone, aligned and judged as ``run`` does (a fit
  whose fields mostly fail is doubted, and said so); draws every field region (green: valid, red:
  flagged) and prints the extracted fields and why the page is refused, so a template is authored in minutes.
- ``list [--templates DIR]``: the loaded templates (name, device, version, page, source file).
- ``match IMAGE``: which template the image is (device, version, page) by ``run``'s verdict, how every
  candidate scored and why each refused one was refused (score, rule, measured value) or doubted.
- ``run IMAGE...``: template mode, falling back to the general pipeline when nothing matches (JSON out).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocrpipe.templates.fields import FieldResult
from ocrpipe.templates.register import Registration

TEMPLATES_HELP = ("a template file or folder added to the built-in templates (repeat the option for more; "
                  "a name used twice is an error)")


def _templates_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--templates", action="append", metavar="PATH", help=TEMPLATES_HELP)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``template`` command group."""
    p = subparsers.add_parser("template", help="fixed-layout templates: check, match, run",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="template_command", required=True, metavar="ACTION")

    n = sub.add_parser("new", help="make a template from a reference image and the values printed on it")
    n.add_argument("reference", help="a clean image of the printout or form")
    n.add_argument("--values", required=True, metavar="JSON",
                   help="JSON object: field name (any script) -> the value as printed on the reference")
    n.add_argument("--name", required=True, help="template name (also the file names)")
    n.add_argument("--out", required=True, metavar="DIR", help="folder to write NAME.yaml and NAME.png into")
    n.add_argument("--device", help="device model (default: the name)")
    n.add_argument("--version", default="1", help="layout/firmware version (default 1)")
    n.set_defaults(func=_cmd_new)

    c = sub.add_parser("check", help="draw a template's regions over an image and print its fields")
    c.add_argument("template", help="template YAML file, or the name of a built-in or --templates template")
    c.add_argument("image")
    c.add_argument("--out", metavar="PNG", help="where to write the drawing (default <image>.template.png)")
    c.add_argument("--json", action="store_true", help="print the fields as JSON")
    _templates_option(c)
    c.set_defaults(func=_cmd_check)

    ls = sub.add_parser("list", help="the loaded templates: name, device, version, page, source file")
    _templates_option(ls)
    ls.set_defaults(func=_cmd_list)

    m = sub.add_parser("match", help="which template an image is")
    m.add_argument("image")
    _templates_option(m)
    m.set_defaults(func=_cmd_match)

    r = sub.add_parser("run", help="extract fields (template mode), or OCR the page when no template matches")
    r.add_argument("images", nargs="+", metavar="IMAGE")
    _templates_option(r)
    r.add_argument("--no-fallback", action="store_true", help="do not run the general pipeline on unmatched pages")
    r.set_defaults(func=_cmd_run)


def _load_image(path: str) -> np.ndarray:
    from ocrpipe.engine import decode as imageio

    return imageio.load_pages(path)[0]


def _template(spec: str, paths: list[str] | None = None):  # type: ignore[no-untyped-def]
    from ocrpipe.templates.schema import load_template, template_set

    if Path(spec).is_file():
        return load_template(spec)
    known = template_set(paths)
    for t in known:
        if t.name == spec:
            return t
    from ocrpipe.errors import ErrorCode, InputError

    names = ", ".join(t.name for t in known)
    raise InputError(ErrorCode.FILE_NOT_FOUND, f"template {spec!r} is neither a file nor a loaded template "
                     f"({names})", stage=None)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for path in ("/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
                 "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"):
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


def draw_fields(image: np.ndarray, fields: tuple[FieldResult, ...], reg: Registration | None = None,
                ref_size: tuple[int, int] | None = None) -> Image.Image:
    """The image with each field's box (green valid, red flagged), name and value."""
    img = Image.fromarray(image[:, :, :3] if image.ndim == 3 else image).convert("RGB")
    draw = ImageDraw.Draw(img)
    font = _font(12)
    if reg is not None and ref_size is not None:
        w, h = ref_size
        page = reg.to_scan(np.array([[0, 0], [w, 0], [w, h], [0, h]], float))
        draw.polygon([tuple(p) for p in page], outline=(40, 120, 255), width=2)
    for f in fields:
        color = (0, 170, 0) if f.valid else (220, 0, 0)
        draw.polygon([tuple(p) for p in f.box], outline=color, width=2)
        x, y = f.box[0]
        draw.text((x, y - 14), f"{f.name}={f.value}", fill=color, font=font)
    return img


def _print_fields(fields: tuple[FieldResult, ...]) -> None:
    for f in fields:
        mark = "ok " if f.valid else "BAD"
        unit = f" {f.unit}" if f.unit else ""
        why = f"  ({'; '.join(f.issues)})" if f.issues else ""
        print(f"{mark} {f.name:<16} {f.value!s:<12}{unit:<8} raw={f.raw!r:<14} conf={f.confidence:.2f}{why}")


def _read_values(path: str) -> dict[str, str]:
    from ocrpipe.errors import ErrorCode, InputError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(ErrorCode.INVALID_ARGUMENT, f"--values {path}: {exc}", stage=None) from exc
    if not isinstance(data, dict) or not data or not all(isinstance(v, str | int | float) for v in data.values()):
        raise InputError(ErrorCode.INVALID_ARGUMENT,
                         f"--values {path}: expected a JSON object of field name -> printed value", stage=None)
    return {str(k): str(v) for k, v in data.items()}


def _cmd_new(args: argparse.Namespace) -> int:
    from ocrpipe.engine.pipeline import Pipeline
    from ocrpipe.errors import ErrorCode, InputError
    from ocrpipe.templates.author import builtin_clash, make, reproduce, trim_to_paper, write
    from ocrpipe.templates.engine import TemplateEngine
    from ocrpipe.templates.schema import load_template

    clash = builtin_clash(args.name)
    if clash:
        raise InputError(ErrorCode.INVALID_ARGUMENT, f"--name {args.name!r} is a built-in template ({clash})",
                         stage=None)
    values = _read_values(args.values)
    image = trim_to_paper(_load_image(args.reference))
    lines = Pipeline.default().run_image(image).pages[0].lines
    engine = TemplateEngine([])
    proposal, dropped = make(image, values, lines, engine.recognizer, name=args.name, device=args.device,
                             version=args.version)
    if not proposal.data["fields"]:  # nothing to write: a template without fields would not load
        raise InputError(ErrorCode.INVALID_ARGUMENT, f"none of the values was found on {args.reference}: "
                         f"{', '.join(proposal.missing)}", stage=None)
    if dropped:
        print(f"labels not read back on the reference, not used as anchors: {sorted(set(dropped))}")
    path = write(proposal, image, args.out)
    print(f"wrote {path} ({len(proposal.data['fields'])} fields)")
    result, _ = TemplateEngine([load_template(path)], recognizer=engine.recognizer, reader=engine.reader,
                               arbiter=engine.arbiter).run_image(image)
    problems = reproduce(proposal, result)
    for p in problems:
        print(f"NOT REPRODUCED {p}", file=sys.stderr)
    if not problems:
        print(f"the template reads all {len(values)} values of the reference")
    return 1 if problems else 0


def _cmd_check(args: argparse.Namespace) -> int:
    from ocrpipe.templates.engine import TemplateEngine, rule_holds_on
    from ocrpipe.templates.register import to_gray, warp_region

    tpl = _template(args.template, args.templates)
    image = _load_image(args.image)
    result, match = TemplateEngine([tpl]).run_image(image)  # the alignment and verdict of template run
    cand = match.candidates[0]
    reg = match.registration
    print(f"template {tpl.name} ({tpl.device} v{tpl.version} p{tpl.page}): registration score {cand.score:.3f} "
          f"(min {tpl.min_score})" + (f", angle {reg.angle:.2f}°, scale {reg.scale:.3f}" if reg else ""))
    if result is None or reg is None:
        print(f"REFUSED: {cand.reason or match.reason}")
        return 1
    gray = to_gray(image)
    for i, rule in enumerate(tpl.rules):
        ok, mean = rule_holds_on(rule, warp_region(gray, reg, tpl.pixel_box(rule.region)))
        print(f"rule {i}: region {list(rule.region)} mean {mean:.0f} -> {'ok' if ok else 'FAILS'}")
    for d in match.doubted:
        print(f"DOUBTED: {d}")
    if args.json:
        print(json.dumps([f.to_dict() for f in result.fields], ensure_ascii=False, indent=1))
    else:
        _print_fields(result.fields)
    out = Path(args.out) if args.out else Path(args.image).with_suffix(".template.png")
    draw_fields(image, result.fields, reg, tpl.size).save(out)
    print(f"wrote {out}", file=sys.stderr)
    return 0 if all(f.valid for f in result.fields) and not match.doubted else 1


def _engine(paths: list[str] | None):  # type: ignore[no-untyped-def]
    from ocrpipe.templates.engine import TemplateEngine
    from ocrpipe.templates.schema import template_set

    return TemplateEngine(template_set(paths)) if paths else TemplateEngine.default()


def _cmd_list(args: argparse.Namespace) -> int:
    from ocrpipe.templates.schema import template_set

    for t in template_set(args.templates):
        print(f"{t.name}\t{t.device}\tv{t.version}\tp{t.page}\t{t.source}")
    return 0


def _cmd_match(args: argparse.Namespace) -> int:
    engine = _engine(args.templates)
    result, match = engine.run_image(_load_image(args.image))  # the verdict of template run, fields read
    for c in sorted(match.candidates, key=lambda c: -c.score):
        print(f"  {c.name:<16} score {c.score:6.3f}  {'ok' if c.rules_ok else c.reason}")
    for d in match.doubted:
        print(f"doubted: {d}")
    if result is None or match.template is None:
        print(f"no match: {match.reason} (the general pipeline would be used)")
        return 1
    t = match.template
    print(f"match: {t.name} (device {t.device}, version {t.version}, page {t.page}), "
          f"{sum(f.valid for f in result.fields)} of {len(result.fields)} fields valid")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    engine = _engine(args.templates)
    status = 0
    for path in args.images:
        image = _load_image(path)
        out: dict[str, Any]
        if args.no_fallback:
            result, match = engine.run_image(image)
            out = result.to_dict() if result else {"mode": "none", "reason": match.reason}
        else:
            out = engine.process(image)
        out["file"] = path
        status |= 0 if out.get("mode") == "template" and out.get("valid") else 1
        print(json.dumps(out, ensure_ascii=False))
    return status
