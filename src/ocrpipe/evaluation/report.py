"""Render evaluation results: terminal table, Markdown table, ``report.json`` and an HTML report.

``results`` is the structure built by :mod:`ocrpipe.evaluation.cli`::

    {"created": iso-time, "datasets": [{"name", "path", "casefold", "images",
        "engines": [{"engine", "timed", "models", "metrics": aggregate(...), "per_image": [...]}]}]}
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

COLUMNS: list[tuple[str, str, Callable[[dict[str, Any], dict[str, Any]], Any]]] = [
    ("line CER", "{:.3f}", lambda m, e: m.get("line_cer")),
    ("page CER", "{:.3f}", lambda m, e: m.get("page_cer")),
    ("CER", "{:.3f}", lambda m, e: m.get("cer")),
    ("WER", "{:.3f}", lambda m, e: m.get("wer")),
    ("word F1", "{:.3f}", lambda m, e: (m.get("word_f1") or {}).get("f1")),
    ("det H", "{:.3f}", lambda m, e: (m.get("detection") or {}).get("f1")),
    ("e2e F1", "{:.3f}", lambda m, e: (m.get("e2e") or {}).get("f1")),
    ("kor e2e", "{:.3f}", lambda m, e: (m.get("kor_e2e") or {}).get("accuracy_micro")),
    ("ECE", "{:.3f}", lambda m, e: (m.get("calibration") or {}).get("ece")),
    ("s/img", "{:.2f}", lambda m, e: m.get("seconds_per_image") if e.get("timed", True) else None),
]


def primary_key(dataset: dict[str, Any]) -> str:
    """The headline error of a dataset: line CER where it has boxes, else page CER."""
    for eng in dataset["engines"]:
        if eng["metrics"].get("line_cer") is not None:
            return "line_cer"
    return "page_cer"


def _cell(fmt: str, value: Any) -> str:
    return "-" if value is None else fmt.format(value)


def table_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (one per dataset x engine) shared by the terminal and Markdown tables."""
    header = ["dataset", "engine", "images", "errors"] + [c[0] for c in COLUMNS]
    rows = []
    for ds in results["datasets"]:
        for eng in ds["engines"]:
            m = eng["metrics"]
            rows.append(
                [ds["name"], eng["engine"], str(m["images"]), str(m["errors"])]
                + [_cell(fmt, get(m, eng)) for _, fmt, get in COLUMNS]
            )
    return header, rows


def format_table(results: dict[str, Any]) -> str:
    """A fixed-width table for the terminal."""
    header, rows = table_rows(results)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    lines = [fmt(header), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines)


def markdown_table(results: dict[str, Any], columns: tuple[str, ...] | None = None) -> str:
    """A GitHub Markdown table; ``columns`` picks metric columns by header name."""
    header, rows = table_rows(results)
    keep = [i for i, h in enumerate(header) if i < 2 or columns is None or h in columns]
    out = [
        "| " + " | ".join(header[i] for i in keep) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in keep) + "|",
    ]
    out += ["| " + " | ".join(r[i] for i in keep) + " |" for r in rows]
    return "\n".join(out)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")


# ---- plots -----------------------------------------------------------------------------------------------


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    for path in ("/usr/share/fonts/truetype/nanum/NanumGothic.ttf",):
        if Path(path).is_file():
            font_manager.fontManager.addfont(path)
            hangul = font_manager.FontProperties(fname=path).get_name()
            plt.rcParams["font.family"] = ["DejaVu Sans", hangul]  # Latin and signs, then Hangul
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def plot_distribution(ds: dict[str, Any], path: Path) -> None:
    """Per-image headline error of every engine: box plot with the individual images as dots."""
    plt = _plt()
    key = primary_key(ds)
    names = [e["engine"] for e in ds["engines"]]
    values = [[r[key]["rate"] for r in e["per_image"] if r.get(key)] for e in ds["engines"]]
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(names), 4.0))
    ax.boxplot([v or [0.0] for v in values], showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=15)
    for i, vals in enumerate(values, 1):
        jitter = [i + 0.18 * ((k * 0.618) % 1 - 0.5) for k in range(len(vals))]
        ax.scatter(jitter, vals, s=12, alpha=0.6)
    ax.set_ylabel(key.replace("_", " ") + " per image")
    ax.set_title(f"{ds['name']}: per-image error ({len(ds['engines'][0]['per_image'])} images)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_speed_accuracy(results: dict[str, Any], path: Path) -> bool:
    """Seconds per image (log x) against the headline error, one marker per dataset x engine."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    markers = "osD^v<>P*X"
    drawn = False
    for d, ds in enumerate(results["datasets"]):
        key = primary_key(ds)
        for eng in ds["engines"]:
            m = eng["metrics"]
            if not eng.get("timed", True) or m.get(key) is None or not m.get("seconds_per_image"):
                continue
            ax.scatter(m["seconds_per_image"], m[key], marker=markers[d % len(markers)], s=60)
            ax.annotate(
                f"{eng['engine']} ({ds['name']})",
                (m["seconds_per_image"], m[key]),
                fontsize=7,
                xytext=(4, 3),
                textcoords="offset points",
            )
            drawn = True
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))
    ax.set_xlabel("seconds per image (log)")
    ax.set_ylabel("error (line CER, or page CER without boxes)")
    ax.set_title("speed vs accuracy (lower-left is better)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if drawn:
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


# ---- HTML ------------------------------------------------------------------------------------------------


def write_html(results: dict[str, Any], out_dir: Path, worst_images: dict[tuple[str, str], list[dict]]) -> Path:
    """``index.html`` with the table, the plots and the worst images (``worst_images[(ds, engine)]``:
    dicts with ``image``, ``error`` and ``png`` relative to ``out_dir``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "plots").mkdir(exist_ok=True)
    esc = html.escape
    header, rows = table_rows(results)
    parts = [
        "<!doctype html><html lang='ko'><head><meta charset='utf-8'><title>ocrpipe evaluation</title>",
        "<style>body{font-family:NanumGothic,'Noto Sans CJK KR',sans-serif;margin:24px;max-width:1500px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:nth-child(-n+2),th{text-align:left}img{max-width:100%;border:1px solid #ddd}"
        ".err{color:#b00}</style></head><body>",
        f"<h1>ocrpipe evaluation</h1><p>created {esc(results.get('created', ''))}. Metrics are micro averages"
        " (summed edits ÷ summed reference length); definitions in <code>ocrpipe.evaluation.metrics</code>."
        " s/img is wall time per image, engines run one after another in one process.</p>",
        "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>",
        *("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows),
        "</table>",
    ]
    if plot_speed_accuracy(results, out_dir / "plots" / "speed_accuracy.png"):
        parts.append("<h2>Speed vs accuracy</h2><img src='plots/speed_accuracy.png'>")
    for ds in results["datasets"]:
        plot = f"plots/{_slug(ds['name'])}_distribution.png"
        plot_distribution(ds, out_dir / plot)
        parts.append(
            f"<h2>{esc(ds['name'])}</h2><p>{esc(ds['path'])}; {ds['images']} images; "
            f"case-insensitive: {ds['casefold']}</p><img src='{plot}'>"
        )
        parts.append(per_image_table(ds))
        for eng in ds["engines"]:
            errs = [r for r in eng["per_image"] if r.get("error")]
            if errs:
                parts.append(
                    f"<p class='err'>{esc(eng['engine'])}: {len(errs)} error rows: "
                    + "; ".join(esc(f"{r['image']}: [{r['error']['code']}] {r['error']['message']}") for r in errs[:10])
                    + "</p>"
                )
            worst = worst_images.get((ds["name"], eng["engine"]), [])
            if worst:
                parts.append(
                    f"<h3>{esc(eng['engine'])}: worst images</h3><p>left: ground truth "
                    "<span style='color:#149c3c'>green</span>, prediction <span style='color:#dc2828'>"
                    "red</span>, ignore regions grey; right: predicted text.</p>"
                )
                for w in worst:
                    parts.append(f"<h4>{esc(w['image'])}: {esc(w['label'])}</h4><img src='{esc(w['png'])}'>")
    parts.append("</body></html>")
    path = out_dir / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def per_image_table(ds: dict[str, Any]) -> str:
    """A collapsible HTML table: one row per image, the headline error and seconds of every engine."""
    esc = html.escape
    key = primary_key(ds)
    names = [e["engine"] for e in ds["engines"]]
    by_engine = [{r["image"]: r for r in e["per_image"]} for e in ds["engines"]]
    images = [r["image"] for r in ds["engines"][0]["per_image"]] if ds["engines"] else []
    head = "<tr><th>image</th>" + "".join(f"<th>{esc(n)} {key.replace('_', ' ')}</th><th>s</th>" for n in names)
    rows = []
    for image in images:
        cells = []
        for rows_of in by_engine:
            r = rows_of.get(image, {})
            value = "error" if r.get("error") else _cell("{:.3f}", (r.get(key) or {}).get("rate"))
            cells.append(f"<td>{value}</td><td>{_cell('{:.2f}', r.get('seconds'))}</td>")
        rows.append(f"<tr><td>{esc(image)}</td>{''.join(cells)}</tr>")
    return (
        f"<details><summary>per-image results ({len(images)} images)</summary><table>{head}</tr>"
        + "".join(rows)
        + "</table></details>"
    )


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
