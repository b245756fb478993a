"""`fer-edge triton-repo`: a Triton Inference Server model repository from fer-edge artifacts."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("triton-repo")
    def triton_repo(
        artifacts: List[str] = typer.Argument(..., help="classifier artifacts: .onnx, OpenVINO .xml, TensorRT .engine/.plan, or 'default'"),
        output: Path = typer.Option(..., "-o", "--output", help="repository folder to write"),
        name: Optional[List[str]] = typer.Option(None, "--name", help="model name, once per artifact (default: method_precision_kind)"),
        backend: str = typer.Option("native", "--backend", help="native: each artifact on its Triton backend (onnxruntime/openvino/tensorrt_plan); python: fer-edge's runtime in Triton's python backend"),
        faces: bool = typer.Option(True, "--faces/--no-faces", help="add the face pipeline model fer_faces (frame -> faces; classifies with the first artifact)"),
        device: str = typer.Option("cpu", "--device", help="instance kind: cpu or gpu (TensorRT engines: gpu)"),
        instances: int = typer.Option(1, "--instances", min=1, help="model instances per device"),
        max_batch: int = typer.Option(32, "--max-batch", min=1, help="the classifiers' max_batch_size (dynamic batching)"),
        max_delay_us: int = typer.Option(2000, "--max-delay-us", min=0, help="how long Triton's dynamic batcher waits for more requests"),
        accelerator: str = typer.Option("none", "--accelerator", help="ONNX Runtime models: tensorrt (GPU) or openvino (CPU) execution accelerator, or none"),
        precision: str = typer.Option("fp16", "--precision", help="precision of ONNX Runtime's TensorRT accelerator: fp16 or fp32"),
        performance_hint: str = typer.Option("LATENCY", "--performance-hint", help="OpenVINO backend: LATENCY or THROUGHPUT"),
        detector: str = typer.Option("blazeface", "--detector", help="the face pipeline's detector: blazeface, blazeface_full or haar"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing repository folder"),
    ) -> None:
        """Write a Triton model repository: config.pbtxt per model, the face pipeline (python backend, BLS) and a README.

        Start Triton with: tritonserver --model-repository=REPO (the README gives the container and command).
        """
        from rich.console import Console

        from ..triton import Serving, build_repository
        from ..vision.detectors import list_detectors

        if detector not in list_detectors():
            from ..errors import FerEdgeError

            raise FerEdgeError(f"unknown face detector {detector!r}; choose one of {', '.join(list_detectors())}")
        serving = Serving(max_batch=max_batch, max_delay_us=max_delay_us, instances=instances, device=device,
                          accelerator=accelerator, precision=precision, performance_hint=performance_hint.upper(),
                          detector=detector)
        repo = build_repository(artifacts, output, serving, backend=backend, names=name or None, faces=faces,
                                overwrite=overwrite)
        console = Console(stderr=True, soft_wrap=True)
        for model, kind in repo.models.items():
            console.print(f"  {model}: {kind}", highlight=False)
        console.print(f"Triton repository: {repo.folder} (start: tritonserver --model-repository={repo.folder}; "
                      f"see {repo.folder / 'README.md'})", highlight=False)
