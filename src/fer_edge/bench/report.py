"""Benchmark results as a versioned JSON document and a Markdown table."""
from __future__ import annotations

import json
from pathlib import Path

SCHEMA = "fer-edge/bench"
SCHEMA_VERSION = 1

# Every row has these keys (values may be None where not measured).
ROW_KEYS = ("artifact", "method", "backend", "device", "format", "precision", "precision_note", "size_mb",
            "latency", "accuracy", "agreement", "speedup_vs_reference", "memory_mb", "input")


def document(machine: dict, config: dict, rows: list[dict], pipeline: dict | None = None) -> dict:
    for row in rows:
        missing = [k for k in ROW_KEYS if k not in row]
        if missing:
            raise ValueError(f"benchmark row lacks {missing}")
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "machine": machine, "config": config,
            "rows": rows, "pipeline": pipeline}


def validate(doc: dict) -> None:
    """Raise ValueError if `doc` is not a benchmark document this version can read."""
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"not a fer-edge benchmark document (schema={doc.get('schema')!r})")
    if int(doc.get("schema_version", 0)) > SCHEMA_VERSION:
        raise ValueError("benchmark document is newer than this fer-edge")
    for key in ("machine", "config", "rows"):
        if key not in doc:
            raise ValueError(f"benchmark document lacks {key!r}")
    for row in doc["rows"]:
        for key in ROW_KEYS:
            if key not in row:
                raise ValueError(f"benchmark row lacks {key!r}")
        for lat in row["latency"]:
            if not lat["min_ms"] <= lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]:
                raise ValueError(f"latency percentiles out of order in {row['artifact']}")


def write_json(doc: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(obj):
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _fmt(v, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def table_rows(doc: dict) -> tuple[list[str], list[list[str]]]:
    """A compact header and rows (batch-1 latency, best throughput) for terminals."""
    head = ["artifact", "backend", "precision", "top-1", "agree", "p50 ms", "p90 ms", "best img/s", "× ref"]
    rows = []
    for r in doc["rows"]:
        first = min(r["latency"], key=lambda x: x["batch"]) if r["latency"] else None
        best = max(r["latency"], key=lambda x: x["throughput"]) if r["latency"] else None
        rows.append([r["artifact"], f"{r['backend']}/{r['device']}", r["precision"],
                     _pct((r.get("accuracy") or {}).get("accuracy")), _pct(r.get("agreement")),
                     _fmt(first and first["p50_ms"]), _fmt(first and first["p90_ms"]),
                     f"{best['throughput']:.1f} (b{best['batch']})" if best else "–",
                     _fmt(r.get("speedup_vs_reference"))])
    return head, rows


def markdown(doc: dict) -> str:
    m = doc["machine"]
    cpu = m.get("cpu", {})
    lines = [
        "## Machine",
        "",
        f"- CPU: {cpu.get('model')} ({cpu.get('affinity_cores')} cores available; ISA: {', '.join(cpu.get('isa', [])) or 'none of note'})",
    ]
    for g in m.get("gpus") or []:
        lines.append(f"- GPU: {g['name']} (driver {g['driver']}, CUDA {g.get('cuda')}, CC {g['compute_capability']})")
    if m.get("jetson"):
        j = m["jetson"]
        lines.append(f"- Jetson: {j.get('module')} ({j.get('l4t')}; power mode {j.get('power_mode')})")
    lines.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(m.get("versions", {}).items())))
    cfg = doc["config"]
    lines += ["", f"Warm-up {cfg.get('warmup')} runs, then {cfg.get('runs')} timed runs per batch size; "
              f"threads {cfg.get('threads') or 'engine default'}; data {cfg.get('data') or 'synthetic input (latency only)'}.", ""]
    batches = sorted({lat["batch"] for r in doc["rows"] for lat in r["latency"]})
    head = ["artifact", "backend", "precision", "MB", "top-1", "UAR", "agree"]
    head += [f"p50 ms (b{b})" for b in batches[:1]] + ["p90", "p99", "min–max"]
    head += [f"img/s b{b}" for b in batches] + ["× ref"]
    lines += ["## Results", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes: list[str] = []
    for r in doc["rows"]:
        lat = {x["batch"]: x for x in r["latency"]}
        first = lat.get(batches[0]) if batches else None
        acc = r.get("accuracy") or {}
        prec = r["precision"]
        if r.get("precision_note"):
            if r["precision_note"] not in notes:
                notes.append(r["precision_note"])
            prec += f" [{notes.index(r['precision_note']) + 1}]"
        cells = [r["artifact"], f"{r['backend']}/{r['device']}", prec, _fmt(r["size_mb"]),
                 _pct(acc.get("accuracy")), _pct(acc.get("uar")), _pct(r.get("agreement"))]
        if first:
            cells += [_fmt(first["p50_ms"]), _fmt(first["p90_ms"]), _fmt(first["p99_ms"]),
                      f"{_fmt(first['min_ms'])}–{_fmt(first['max_ms'])}"]
        else:
            cells += ["–"] * 4
        cells += [_fmt(lat[b]["throughput"], 1) if b in lat else "–" for b in batches]
        cells.append(_fmt(r.get("speedup_vs_reference")))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + [f"[{i}] {n}" for i, n in enumerate(notes, 1)]
    energy_rows = [r for r in doc["rows"] if r.get("energy_mj_per_item")]
    if energy_rows:
        lines += ["", "Energy per image (whole-board input power from tegrastats x time / images):", ""]
        lines += [f"- {r['artifact']} ({r['backend']}, {r['precision']}): "
                  + ", ".join(f"b{b} {_fmt(v)} mJ" for b, v in r["energy_mj_per_item"].items()) for r in energy_rows]
    if doc.get("pipeline"):
        p = doc["pipeline"]
        lines += ["", "## Pipeline", "", f"Source {p.get('source')}: {p.get('frames')} frames, "
                  f"**{_fmt(p.get('fps'), 1)} frames/s** end to end, {p.get('faces')} faces.", "",
                  "| stage | mean ms/frame | share |", "|---|---|---|"]
        total = sum(p.get("stages_ms", {}).values()) or 1.0
        for stage, ms in p.get("stages_ms", {}).items():
            lines.append(f"| {stage} | {_fmt(ms)} | {100 * ms / total:.0f}% |")
    return "\n".join(lines) + "\n"


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.2f}%"
