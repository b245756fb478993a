"""`fer-edge import`: turn the authors' released checkpoint into our checkpoint format.

Generic over methods: the method's registry entry names its checkpoint filter (official names ->
ours) and its model may list official keys it deliberately does not keep. The authors' file is read
without executing pickled code (:func:`fer_edge.checkpoint.read_foreign_checkpoint`), checked strictly
against the model, and written as safetensors whose metadata records the method, label order,
preprocessing and the source file's sha256, so every later export and runtime uses it correctly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import FerEdgeError


def dataset_labels(dataset: str, num_classes: int) -> list[str]:
    """Label order of the checkpoint's training data set (e.g. "caer-s" -> LABEL_SETS["caers"])."""
    from ..labels import LABEL_SETS

    key = dataset.lower().replace("-", "").replace("_", "")
    if key not in LABEL_SETS:
        raise FerEdgeError(f"unknown --dataset {dataset!r}; known label orders: {', '.join(sorted(LABEL_SETS))}")
    labels = list(LABEL_SETS[key])
    if len(labels) != num_classes:
        raise FerEdgeError(f"--dataset {dataset} has {len(labels)} classes but the model has {num_classes}; "
                           "pick the variant with that many classes")
    return labels


def default_output(checkpoint: Path, method: str) -> Path:
    return checkpoint.with_name(f"{checkpoint.stem}.{method}.safetensors")


def import_checkpoint(method: str, checkpoint: str | Path, output: str | Path | None = None,
                      dataset: str | None = None, clip_weights: str | Path | None = None,
                      **model_kwargs) -> tuple[Path, dict]:
    """Read, check and convert an authors' checkpoint; returns (our file, load report).

    `clip_weights`: the CLIP file for methods whose released checkpoints leave the CLIP towers out
    (UA-FER); the imported checkpoint then holds everything needed to run.
    """
    from ..checkpoint import check_checkpoint_file, load_into, save_checkpoint, sha256_file
    from ..models import create_model, get_config

    cfg = get_config(method)
    checkpoint = Path(checkpoint)
    for path, flag in ((checkpoint, "--checkpoint"), (clip_weights, "--clip-weights")):
        if path is not None:  # a missing, refused or broken file fails before the model is built
            check_checkpoint_file(path, flag)
    if clip_weights:
        model_kwargs["clip_weights"] = str(clip_weights)
    model = create_model(method, **model_kwargs)
    report = load_into(model, checkpoint, method=method)  # strict: raises on missing/unexpected keys
    labels = dataset_labels(dataset, len(cfg.labels)) if dataset else list(cfg.labels)
    counts = {"loaded": len(model.state_dict()), "ignored": len(report["ignored"]),
              "missing": len(report["missing"]), "unexpected": len(report["unexpected"])}
    meta = cfg.metadata(
        labels=labels,
        source_sha256=sha256_file(checkpoint),
        extra={"imported_from": checkpoint.name, "dataset": dataset or "", "import": counts,
               "ignored_keys": report["ignored"]},
    )
    out = Path(output) if output else default_output(checkpoint, method)
    save_checkpoint(out, model.state_dict(), meta)
    return out, counts


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_cmd(
        method: str = typer.Option(..., help="registered method, e.g. poster_v2 or poster_v2_8cls"),
        checkpoint: Path = typer.Option(..., help="the authors' file (.pth/.pth.tar, {'state_dict': ...} or a bare state dict)"),
        output: Optional[Path] = typer.Option(None, help="our checkpoint to write (default: <checkpoint>.<method>.safetensors)"),
        dataset: Optional[str] = typer.Option(None, help="data set the checkpoint was trained on, for its label order "
                                                         "(rafdb, affectnet7, affectnet8, caer-s, ...)"),
        clip_weights: Optional[Path] = typer.Option(None, help="local CLIP weights (CLIP methods whose files lack the towers)"),
    ) -> None:
        """Import an authors' released checkpoint (no pickled code is executed) into our format."""
        from rich.console import Console

        console = Console()
        with console.status(f"reading {checkpoint.name}"):
            out, counts = import_checkpoint(method, checkpoint, output, dataset, clip_weights)
        console.print(
            f"{method}: {counts['loaded']} tensors loaded, {counts['ignored']} ignored (modules the original never runs), "
            f"{counts['missing']} missing, {counts['unexpected']} unexpected -> {out}"
        )
