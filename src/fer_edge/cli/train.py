"""`fer-edge train`: train a registered method with its authors' recipe (shared trainer, any data set)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def parse_model_args(items: list[str] | None, flag: str = "--model-arg") -> dict:
    """``KEY=VALUE`` pairs (values as Python literals: 64, (1,1,1), True) -> constructor kwargs."""
    import ast

    from ..errors import FerEdgeError

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise FerEdgeError(f"{flag} takes KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def _existing_file(path: Optional[Path], flag: str) -> Optional[str]:
    from ..checkpoint import check_checkpoint_file

    if path is None:
        return None
    check_checkpoint_file(path, flag)  # a missing, refused or broken file fails before data and model load
    return str(path)


def check_device(device: Optional[str]) -> None:
    """A --device PyTorch can use here (cpu, cuda, cuda:N with that GPU present), or a one-line error."""
    import torch

    from ..errors import FerEdgeError

    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise FerEdgeError(f"--device {device!r} is not a device name; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise FerEdgeError(f"--device {device}: PyTorch sees no CUDA GPU here; use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise FerEdgeError(f"--device {device}: there are only {count} GPU(s) (cuda:0..cuda:{count - 1})")
    elif dev.type != "cpu":
        raise FerEdgeError(f"--device {device}: training runs on cpu or cuda devices")


def parse_fold(value: Optional[str]) -> int | str | None:
    """``--fold``: a fold number, ``all`` (every fold in turn), or unset."""
    from ..errors import FerEdgeError

    if value is None or value == "all":
        return value
    try:
        return int(value)
    except ValueError:
        raise FerEdgeError(f"--fold takes a fold number or 'all', got {value!r}") from None


def register(app: typer.Typer) -> None:
    from ..data.catalog import DATASETS

    @app.command("train")
    def train(
        method: str = typer.Option(..., help="registered method, e.g. poster_v2"),
        dataset: str = typer.Option(..., help="data set: " + ", ".join(DATASETS)),
        fold: Optional[str] = typer.Option(None, help="DFEW/MAFW 5-fold protocol: fold 1..5, or 'all' (runs every fold, reports mean UAR/WAR)"),
        data_path: Path = typer.Option(..., help="root folder (or file) of the data set"),
        output: Path = typer.Option(Path("runs/train"), help="folder for checkpoints, log.json and plots"),
        epochs: Optional[int] = typer.Option(None, min=1, help="default: the recipe's (POSTER V2: 200)"),
        batch_size: Optional[int] = typer.Option(None, min=1, help="global batch size (default: the recipe's; POSTER V2: 144)"),
        lr: Optional[float] = typer.Option(None, help="learning rate (default: the recipe's per data set)"),
        amp: str = typer.Option("auto", help="mixed precision: auto (fp16 on GPU, off on CPU), fp16, bf16, off"),
        resume: bool = typer.Option(False, help="continue the run in --output from its last epoch"),
        val_fraction: float = typer.Option(0.1, min=0.0, max=0.9, help="share of the training data held out for model selection"),
        select_on: str = typer.Option("validation", help="pick the best epoch on validation, or on test as the authors did"),
        select_metric: str = typer.Option("accuracy", help="accuracy (top-1/WAR) or uar"),
        classes: Optional[str] = typer.Option(None, help="train on a subset of classes, e.g. happy,surprise,neutral"),
        limit: Optional[int] = typer.Option(None, min=1, help="at most N training samples, stratified (quick runs)"),
        eval_limit: Optional[int] = typer.Option(None, min=1, help="at most N validation / test samples (default: --limit)"),
        sampler: str = typer.Option("auto", help="auto (the recipe's: class-balanced for AffectNet), shuffle, balanced"),
        workers: int = typer.Option(4, min=0, help="data-loading worker processes"),
        seed: int = typer.Option(0),
        device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 (default: the GPU if there is one)"),
        threads: Optional[int] = typer.Option(None, min=1, help="CPU threads for PyTorch"),
        ir50: Optional[Path] = typer.Option(None, help="POSTER V2: the authors' ir50.pth"),
        mobilefacenet: Optional[Path] = typer.Option(None, help="POSTER V2: the authors' mobilefacenet_model_best.pth.tar"),
        clip_weights: Optional[Path] = typer.Option(None, help="CLIP-based methods: local OpenAI/OpenCLIP weights file (e.g. ViT-B-32.pt)"),
        stage1_weights: Optional[Path] = typer.Option(None, help="CEPrompt stage 2: the stage-1 checkpoint (fer-edge train --method ceprompt_stage1)"),
        model_arg: Optional[list[str]] = typer.Option(None, help="constructor argument KEY=VALUE (repeatable), e.g. a reduced configuration"),
        recipe_opt: Optional[list[str]] = typer.Option(None, help="recipe setting KEY=VALUE (repeatable), e.g. image_lr_ratio=1.0 for DFER-CLIP"),
        progress: bool = typer.Option(True, help="progress bars"),
    ) -> None:
        """Train with the method's recipe; multi-GPU: torchrun --nproc-per-node N -m fer_edge.cli.main train ..."""
        from rich.console import Console

        from ..errors import FerEdgeError, require

        from ..data.catalog import dataset_name

        fold_arg = parse_fold(fold)
        folds = DATASETS[dataset].folds if dataset in DATASETS and fold_arg == "all" else None
        if fold_arg == "all" and not folds:
            dataset_name(dataset, 1)  # the one-line error for an unknown or fold-less set
        run_name = dataset_name(dataset, folds[0] if folds else fold_arg)
        if lr is not None and not lr > 0:
            raise FerEdgeError(f"--lr must be a positive learning rate, got {lr}")
        if not data_path.exists():
            raise FerEdgeError(f"--data-path {data_path} does not exist")
        # a flag the method does not take is the first thing to say, before its file is read
        if (ir50 or mobilefacenet) and not method.startswith("poster_v2"):
            raise FerEdgeError("--ir50/--mobilefacenet are POSTER V2's backbones; drop them for " + method)
        if stage1_weights and not method.startswith("ceprompt"):
            raise FerEdgeError("--stage1-weights is CEPrompt's stage-1 checkpoint; drop it for " + method)
        options = {"ir50": _existing_file(ir50, "--ir50"), "mobilefacenet": _existing_file(mobilefacenet, "--mobilefacenet"),
                   "clip_weights": _existing_file(clip_weights, "--clip-weights"),
                   "stage1_weights": _existing_file(stage1_weights, "--stage1-weights")}
        options.update(parse_model_args(recipe_opt, "--recipe-opt"))
        require("torch", "train", "training")
        require("torchvision", "train", "training")
        import torch

        from ..training import TrainConfig, Trainer

        check_device(device)
        if threads:
            torch.set_num_threads(threads)
        console = Console(stderr=True)
        cfg = TrainConfig(method=method, dataset=run_name, data_path=data_path, output=output, epochs=epochs,
                          batch_size=batch_size, lr=lr, amp=amp, resume=resume, val_fraction=val_fraction,
                          select_on=select_on, select_metric=select_metric, limit=limit, eval_limit=eval_limit,
                          classes=tuple(c for c in classes.split(",") if c.strip()) if classes else None, sampler=sampler, workers=workers,
                          seed=seed, device=device, model_kwargs=parse_model_args(model_arg),
                          options={k: v for k, v in options.items() if v}, progress=progress,
                          echo=lambda line: console.print(line, highlight=False, soft_wrap=True))
        if folds:
            from ..training.folds import train_folds

            summary = train_folds(cfg, dataset, folds)
            console.print(f"{len(folds)}-fold {dataset}: test " + ", ".join(
                f"{m.upper()} {100 * summary['mean'][m]:.2f}% (+- {100 * summary['std'][m]:.2f})" for m in ("uar", "war"))
                + f" at the selected epochs; per fold and mean in {summary['path']}")
            return
        result = Trainer(cfg).fit()
        best = result["best"]
        if best:
            parts = [f"{k} top-1 {100 * v['accuracy']:.2f}% UAR {100 * v['uar']:.2f}% WAR {100 * v['war']:.2f}%"
                     for k, v in best.items() if isinstance(v, dict)]
            console.print(f"best epoch {best['epoch']} (selected on {best['selected_on']}): " + ", ".join(parts))
        console.print(f"checkpoints and log.json in {result['output']}")
