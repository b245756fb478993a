"""`fer-edge info`: what this box can run (backends, devices, versions) before anything is exported."""
from __future__ import annotations

import typer


def _backend_status() -> list[tuple[str, str, str]]:
    """(backend, available?, devices or the install hint) for every backend, from each backend's own
    :meth:`~fer_edge.runtimes.base.Backend.available_devices`."""
    from ..errors import MissingDependencyError
    from ..runtimes import BACKENDS, backend_class

    rows = []
    for name, (_, _, extra) in BACKENDS.items():
        try:
            devices = backend_class(name).available_devices()
        except MissingDependencyError:
            hint = "TensorRT comes from NVIDIA (desktop) or JetPack (Jetson); then " if name == "tensorrt" else ""
            rows.append((name, "no", f"{hint}pip install 'fer-edge[{extra}]'"))
            continue
        except Exception as exc:  # a broken driver must not break `info`
            rows.append((name, "yes", f"installed, but listing devices failed: {exc}"))
            continue
        listed = ", ".join(f"{d} ({what})" if what else d for d, what in devices.items())
        rows.append((name, "yes", listed or "no usable device found"))
    return rows


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
