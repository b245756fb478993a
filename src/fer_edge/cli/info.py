"""`fer-edge info`: what this box can run (backends, devices, versions) before anything is exported."""
from __future__ import annotations

import typer


ENGINE_PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt", "torch": "torch"}


def _backend_status() -> list[tuple[str, str, str]]:
    """(backend, available?, devices or the install hint) for every backend."""
    import importlib.util

    from ..runtimes import BACKENDS

    rows = []
    for name, (_, _, extra) in BACKENDS.items():
        if importlib.util.find_spec(ENGINE_PACKAGES[name]) is None:
            hint = "TensorRT comes from NVIDIA (desktop) or JetPack (Jetson); then " if name == "tensorrt" else ""
            rows.append((name, "no", f"{hint}pip install 'fer-edge[{extra}]'"))
        else:
            rows.append((name, "yes", _devices(name)))
    return rows


def _devices(name: str) -> str:
    try:
        if name == "onnxruntime":
            import onnxruntime as ort

            return ", ".join(ort.get_available_providers())
        if name == "openvino":
            import openvino as ov

            return ", ".join(ov.Core().available_devices)
        if name == "torch":
            import torch

            return "cpu" + (f", cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "")
        if name == "tensorrt":
            import tensorrt as trt

            return f"TensorRT {trt.__version__}"
    except Exception as exc:  # a broken driver must not break `info`
        return f"installed, but listing devices failed: {exc}"
    return ""


def register(app: typer.Typer) -> None:
    @app.command("info")
    def info() -> None:
        """Show the machine, the installed backends and their devices."""
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        from ..bench.machine import machine_record

        console = Console()
        m = machine_record()
        cpu = m["cpu"]
        console.print(f"CPU: {cpu['model']} ({cpu['affinity_cores']} cores available), ISA: {', '.join(cpu['isa']) or '-'}")
        for g in m["gpus"]:
            console.print(f"GPU: {g['name']} (driver {g['driver']}, CUDA {g.get('cuda')}, compute {g['compute_capability']})")
        if m["jetson"]:
            console.print(f"Jetson: {m['jetson']}")
        table = Table(title="backends")
        for col in ("backend", "available", "devices / how to install"):
            table.add_column(col)
        for row in _backend_status():
            table.add_row(*(Text(c) for c in row))  # "[tensorrt]" is text, not markup
        console.print(table)
        console.print("versions: " + ", ".join(f"{k} {v}" for k, v in sorted(m["versions"].items())))
