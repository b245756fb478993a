"""PNG plots of a benchmark document: latency vs batch, accuracy vs latency, confusion matrices."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(row: dict) -> str:
    return f"{Path(row['artifact']).name} · {row['backend']} · {row['precision']}"


def latency_vs_batch(doc: dict, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in doc["rows"]:
        pts = sorted((x["batch"], x["p50_ms"] / x["batch"], x["p90_ms"] / x["batch"]) for x in row["latency"])
        if not pts:
            continue
        b, p50, p90 = zip(*pts)
        line, = ax.plot(b, p50, marker="o", label=_label(row))
        ax.fill_between(b, p50, p90, alpha=0.15, color=line.get_color())
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("ms per image (p50, band to p90)")
    ax.set_title("Latency per image vs batch size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def accuracy_vs_latency(doc: dict, path: Path) -> Path | None:
    rows = [r for r in doc["rows"] if (r.get("accuracy") or {}).get("accuracy") is not None and r["latency"]]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        b1 = min(row["latency"], key=lambda x: x["batch"])
        ax.scatter(b1["p50_ms"], 100 * row["accuracy"]["accuracy"], s=40)
        ax.annotate(_label(row), (b1["p50_ms"], 100 * row["accuracy"]["accuracy"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(f"p50 latency, batch {min(x['batch'] for r in rows for x in r['latency'])} (ms)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title("Accuracy vs latency")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_all(doc: dict, folder: str | Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = [latency_vs_batch(doc, folder / "latency_vs_batch.png")]
    acc = accuracy_vs_latency(doc, folder / "accuracy_vs_latency.png")
    if acc:
        out.append(acc)
    for i, row in enumerate(doc["rows"]):
        cm = (row.get("accuracy") or {}).get("confusion")
        if cm is not None:
            from ..plots import plot_confusion_matrix

            name = f"confusion_{i:02d}_{Path(row['artifact']).stem}_{row['backend']}_{row['precision']}.png"
            out.append(plot_confusion_matrix(np.asarray(cm), row["accuracy"]["labels"], folder / name, title=_label(row)))
    return out
