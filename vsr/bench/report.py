"""Benchmark reports: a text table, per-frame CSV, JSON, and PNG plots of per-frame PSNR."""

import csv
import json
from pathlib import Path

CSV_FIELDS = ("item", "frame", "model", "psnr", "ssim", "tof", "niqe")


def _columns(results):
    cols = [("PSNR", "psnr", "{:.2f}", 6), ("SSIM", "ssim", "{:.4f}", 6)]
    if results.protocol["temporal"]:
        cols.append(("tOF", "tof", "{:.3f}", 6))
    if results.protocol.get("niqe"):
        cols.append(("NIQE", "niqe", "{:.2f}", 5))
    return cols


def _cell(value, fmt, width):
    text = "-" if value is None else fmt.format(value)
    return text.rjust(width)


def format_table(results):
    """The report as text: the protocol line, one row per image/sequence, then the mean over them.

    Each model has PSNR (dB), SSIM and, for video sets, tOF (px) columns, and NIQE when scored.
    """
    cols = _columns(results)
    per_item, mean = results.per_item(), results.mean()
    first = max([len("mean")] + [len(i) for i in per_item])
    group = sum(w for *_, w in cols) + 2 * (len(cols) - 1)
    group = max([group] + [len(m) for m in results.models])

    def row(label, scores_by_model):
        cells = []
        for model in results.models:
            s = scores_by_model.get(model, {})
            cells.append("  ".join(_cell(s.get(key), fmt, w) for _, key, fmt, w in cols).rjust(group))
        return label.ljust(first) + "   " + "   ".join(cells)

    names = " " * first + "   " + "   ".join(m.center(group) for m in results.models)
    heads = " " * first + "   " + "   ".join(
        "  ".join(h.rjust(w) for h, _, _, w in cols).rjust(group) for _ in results.models)
    lines = [f"{results.dataset}: {results.protocol_line()}", names.rstrip(), heads]
    lines += [row(item, per_item[item]) for item in results.items if item in per_item]
    lines.append("-" * len(heads))
    label = "mean" if len(per_item) == 1 else f"mean ({len(per_item)})"
    lines.append(row(label, mean))
    return "\n".join(lines)


def write_csv(results, path):
    """One row per (item, frame, model): psnr (dB; empty if infinite), ssim, tof (empty if none)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for fs in results.to_dict()["frames"]:
            writer.writerow({k: "" if fs[k] is None else fs[k] for k in CSV_FIELDS})


def write_json(results, path):
    """``results.to_dict()``: protocol, mean, per-item means and every frame's scores."""
    Path(path).write_text(json.dumps(results.to_dict(), indent=2) + "\n")


def write_plots(results, folder):
    """PNG plots of PSNR: per frame for each sequence of a video set (one line per model), or one
    bar per model for each image of an image set (images are no time series). Returns the paths
    written ([] when matplotlib is not installed)."""
    try:
        from matplotlib.figure import Figure  # Agg canvas, no pyplot/global backend state
    except ImportError:
        return []
    folder = Path(folder)
    series = {}
    for f in results.frames:
        series.setdefault(f.item, {}).setdefault(f.model, []).append(f.psnr)
    video = results.kind == "video"
    if video:
        plots = [(f"psnr_{item}.png", f"{results.dataset} {item}", by_model)
                 for item, by_model in series.items()]
    else:
        labels = [i for i in results.items if i in series]
        plots = [("psnr.png", results.dataset,
                  {m: [series[i][m][0] for i in labels if m in series[i]] for m in results.models})]
    written = []
    for filename, title, by_model in plots:
        fig = Figure(figsize=(8, 4), dpi=100)
        ax = fig.add_subplot()
        width = 0.8 / max(len(by_model), 1)
        for k, (model, values) in enumerate(by_model.items()):
            label = f"{model} (mean {_finite_mean(values)})"
            if video:
                ax.plot(range(len(values)), values, label=label)
            else:
                finite = [v if v != float("inf") else float("nan") for v in values]
                ax.bar([i + (k - (len(by_model) - 1) / 2) * width for i in range(len(values))], finite,
                       width=width, label=label)
        if not video:
            ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
            finite = [v for vs in by_model.values() for v in vs if v != float("inf")]
            if finite:  # bars from a floor near the lowest score, so differences of 0.1 dB show
                ax.set_ylim(min(finite) - 1.0, max(finite) + 0.5)
        ax.set(title=title, xlabel="frame" if video else "image", ylabel="PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.text(0.01, 0.005, results.protocol_line(), fontsize=6, color="0.4")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        path = folder / filename
        fig.savefig(path)
        written.append(path)
    return written


def _finite_mean(values):
    finite = [v for v in values if v != float("inf")]
    return f"{sum(finite) / len(finite):.2f} dB" if finite else "inf"


def write_report(results, folder):
    """Write ``table.txt``, ``frames.csv``, ``results.json`` and the PSNR plots into ``folder``.

    Returns the paths written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "table.txt"
    table.write_text(format_table(results) + "\n")
    write_csv(results, folder / "frames.csv")
    write_json(results, folder / "results.json")
    return [table, folder / "frames.csv", folder / "results.json"] + write_plots(results, folder)
