"""The shared trainer: data, devices, mixed precision, DDP, checkpoints, resume, metrics, logs.

Everything method-specific comes from the recipe (:mod:`fer_edge.training.recipes`). One run writes
into its output folder:

* ``last.safetensors`` / ``best.safetensors``: model weights in our checkpoint format, with the
  artifact metadata (labels, preprocessing) and the epoch's metrics in ``extra``;
* ``train_state.pt``: optimizer, scheduler, loss scaler, epoch counter and history for ``--resume``
  (tensors and plain containers only, read back by ``torch_files.read_torch_file`` refusing any class);
* ``log.json``: configuration, data sizes, per-epoch top-1/UAR/WAR/macro-F1 on validation AND test;
* ``confusion_best_<split>.png``: confusion matrices of the selected epoch.

Model selection: the authors of the seed methods kept the epoch with the best *test* accuracy. The
default here selects on a held-out, stratified validation split of the training data and reports
test alongside; ``select_on="test"`` reproduces the authors' protocol.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..checkpoint import load_checkpoint, save_checkpoint
from ..torch_files import read_torch_file
from ..data.catalog import open_dataset
from ..data.samples import FaceSamples
from ..data.splits import stratified_split
from ..errors import FerEdgeError
from ..metrics import ClassificationResult, classification_metrics
from . import distributed
from .datasets import FaceTensorDataset
from .precision import Precision
from .recipes import HParams, Recipe, get_recipe
from .samplers import ClassBalancedSampler

SELECT_ON = ("validation", "test")
SELECT_METRICS = ("accuracy", "uar")
SAMPLERS = ("auto", "shuffle", "balanced")
STATE_FILE = "train_state.pt"
_STATE_KEYS = {"epoch", "method", "dataset", "optimizer", "scheduler", "scaler", "history", "best"}


@dataclass
class TrainConfig:
    """One training run. ``None`` hyper-parameters take the recipe's default for the data set."""

    method: str
    dataset: str
    data_path: str | Path
    output: str | Path
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    amp: str = "auto"  # auto (fp16 on CUDA, off on CPU) | off | fp16 | bf16
    resume: bool = False
    val_fraction: float = 0.1
    select_on: str = "validation"
    select_metric: str = "accuracy"
    classes: tuple[str, ...] | None = None  # train on these canonical classes only (samples of others dropped)
    limit: int | None = None  # at most this many training samples (stratified), for quick runs
    eval_limit: int | None = None  # at most this many validation / test samples (default: `limit`)
    sampler: str = "auto"  # auto (the recipe's choice per data set) | shuffle | balanced
    workers: int = 4
    seed: int = 0
    device: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. a reduced configuration
    options: dict[str, Any] = field(default_factory=dict)  # recipe options: backbone files, ...
    progress: bool = True
    echo: Callable[[str], None] = print
    # filled in by the trainer
    hparams: HParams | None = None
    labels: tuple[str, ...] = ()

    def loggable(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "echo"}
        return json.loads(json.dumps(d, default=str))


@dataclass
class Splits:
    train: FaceSamples
    validation: FaceSamples | None
    test: FaceSamples


def choose_labels(recipe: Recipe, dataset_labels: tuple[str, ...]) -> tuple[str, ...]:
    """The method's own output order when it has the same classes as the data set, else the data set's."""
    from ..models import get_config

    method_labels = tuple(get_config(recipe.model_name(dataset_labels)).labels)
    return method_labels if set(method_labels) == set(dataset_labels) else dataset_labels


def load_splits(cfg: TrainConfig, recipe: Recipe) -> Splits:
    train = open_dataset(cfg.dataset, cfg.data_path, "train")
    test = open_dataset(cfg.dataset, cfg.data_path, "test")
    if cfg.classes:
        from ..labels import canonical_name

        try:
            labels = tuple(canonical_name(c) for c in cfg.classes)
        except KeyError as exc:
            raise FerEdgeError(f"--classes: {exc.args[0]}") from None
        absent = [c for c in labels if c not in train.labels]
        if absent:
            raise FerEdgeError(f"--classes: {cfg.dataset} has no {', '.join(absent)} (it has {', '.join(train.labels)})")
    else:
        labels = choose_labels(recipe, train.labels)
    train, test = train.to_labels(labels), test.to_labels(labels)
    val = None
    if cfg.val_fraction > 0:
        keep, held = stratified_split(train.targets, cfg.val_fraction, seed=cfg.seed)
        train, val = train.subset(keep), train.subset(held)
        val.split = "validation"
    eval_limit = cfg.eval_limit or cfg.limit
    train, test = train.limit(cfg.limit, cfg.seed), test.limit(eval_limit, cfg.seed)
    val = val.limit(eval_limit, cfg.seed) if val is not None else None
    return Splits(train, val, test)


class Trainer:
    def __init__(self, cfg: TrainConfig, recipe: Recipe | None = None):
        if cfg.select_on not in SELECT_ON:
            raise FerEdgeError(f"--select-on must be validation or test, got {cfg.select_on!r}")
        if cfg.sampler not in SAMPLERS:
            raise FerEdgeError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {cfg.sampler!r}")
        if cfg.select_metric not in SELECT_METRICS:
            raise FerEdgeError(f"--select-metric must be one of {', '.join(SELECT_METRICS)}, got {cfg.select_metric!r}")
        if cfg.select_on == "validation" and cfg.val_fraction <= 0:
            raise FerEdgeError("--select-on validation needs --val-fraction > 0 (or use --select-on test)")
        self.recipe = recipe or get_recipe(cfg.method)
        hp = self.recipe.hparams(cfg.dataset)
        self.cfg = replace(cfg, hparams=hp, epochs=cfg.epochs or hp.epochs,
                           batch_size=cfg.batch_size or hp.batch_size, lr=cfg.lr or hp.lr)
        self.out = Path(cfg.output)

    # --- set-up -----------------------------------------------------------------------------------
    def _setup(self) -> None:
        cfg, recipe = self.cfg, self.recipe
        self.dist, self.device = distributed.setup(cfg.device)
        if not self.dist.is_main:
            cfg.echo = lambda line: None
            cfg.progress = False
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.splits = load_splits(cfg, recipe)
        cfg.labels = self.splits.train.labels
        model = recipe.build_model(cfg, cfg.labels).to(self.device)
        self.model = model
        self.spec = recipe.input_spec(model, cfg)
        self.precision = Precision(cfg.amp, self.device)
        self.optimizer = recipe.optimizer(model, cfg)
        self.scheduler = recipe.scheduler(self.optimizer, cfg)
        self.ddp = model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(model, device_ids=ids,
                                               find_unused_parameters=recipe.find_unused_parameters)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self._loaders()

    def _loaders(self) -> None:
        cfg, recipe, sp = self.cfg, self.recipe, self.splits
        train_ds = FaceTensorDataset(sp.train, recipe.transforms(cfg, self.spec, True), self.spec.color)
        per_rank = max(1, cfg.batch_size // self.dist.world_size)
        if recipe.sampler_kind(cfg) == "balanced":
            self.sampler = ClassBalancedSampler(sp.train.targets, seed=cfg.seed, rank=self.dist.rank,
                                                world_size=self.dist.world_size)
        elif self.dist.enabled:
            self.sampler = DistributedSampler(train_ds, shuffle=True, seed=cfg.seed)
        else:
            self.sampler = None
        self.generator = torch.Generator()
        pin = self.device.type == "cuda"
        # drop_last: a final batch of one sample breaks BatchNorm in train mode
        self.train_loader = DataLoader(train_ds, batch_size=per_rank, shuffle=self.sampler is None,
                                       sampler=self.sampler, num_workers=cfg.workers, pin_memory=pin,
                                       drop_last=len(train_ds) > per_rank, generator=self.generator,
                                       persistent_workers=False)
        self.eval_loaders = {}
        for name in ("validation", "test"):
            s = getattr(sp, name)
            if s is not None:
                ds = FaceTensorDataset(s, recipe.transforms(cfg, self.spec, False), self.spec.color)
                self.eval_loaders[name] = DataLoader(ds, batch_size=cfg.batch_size, shuffle=False,
                                                     num_workers=cfg.workers, pin_memory=pin)

    # --- checkpoints ------------------------------------------------------------------------------
    def _metadata(self, extra: dict[str, Any]):
        from ..models import get_config

        cfg = get_config(self.recipe.model_name(self.cfg.labels))
        return cfg.metadata(labels=list(self.cfg.labels), input=self.spec,
                            extra={"training": {"dataset": self.cfg.dataset, **extra}})

    def _save_weights(self, name: str, extra: dict[str, Any]) -> Path:
        path = self.out / name
        tmp = path.with_suffix(".tmp")
        save_checkpoint(tmp, self.model.state_dict(), self._metadata(extra))
        os.replace(tmp, path)
        return path

    def _save_state(self, epoch: int) -> None:
        state = {
            "epoch": epoch, "method": self.cfg.method, "dataset": self.cfg.dataset,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "scaler": self.precision.state_dict(),
            "history": json.dumps(self.history), "best": json.dumps(self.best),
        }
        tmp = self.out / (STATE_FILE + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.out / STATE_FILE)

    def _resume(self) -> int:
        """Restore the last finished epoch; returns the epoch to start from."""
        state_path, weights = self.out / STATE_FILE, self.out / "last.safetensors"
        if not (state_path.is_file() and weights.is_file()):
            raise FerEdgeError(f"--resume: no {STATE_FILE} and last.safetensors in {self.out}; start without --resume")
        state = read_torch_file(state_path, foreign=False)  # our own file, but in a user's folder: no classes
        if not isinstance(state, dict) or not _STATE_KEYS <= set(state):
            raise FerEdgeError(f"--resume: {state_path} is not a training state this trainer wrote; start without --resume")
        if (state["method"], state["dataset"]) != (self.cfg.method, self.cfg.dataset):
            raise FerEdgeError(f"--resume: {self.out} holds a {state['method']} run on {state['dataset']}, "
                               f"not {self.cfg.method} on {self.cfg.dataset}")
        sd, _ = load_checkpoint(weights)
        self.model.load_state_dict(sd, strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        self.precision.load_state_dict(state["scaler"])
        self.history, self.best = json.loads(state["history"]), json.loads(state["best"])
        self.cfg.echo(f"resumed from {self.out} after epoch {state['epoch']}")
        return int(state["epoch"])

    # --- loops ------------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int, progress) -> dict[str, float]:
        self.ddp.train()
        # Reproducible order and augmentation, also after --resume: the loader (order, worker seeds) and
        # the global RNG (augmentation in the main process, DropPath) are re-seeded every epoch.
        self.generator.manual_seed(self.cfg.seed + epoch)
        torch.manual_seed(self.cfg.seed + epoch + 7919 * self.dist.rank)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        task = progress.add_task(f"epoch {epoch + 1}/{self.cfg.epochs}", total=len(self.train_loader)) if progress else None
        loss_sum = correct = seen = skipped = 0
        for images, targets in self.train_loader:
            images = images.to(self.device, non_blocking=True)
            targets = targets.to(self.device, non_blocking=True)
            r = self.recipe.train_step(self.ddp, images, targets, self.optimizer, self.precision)
            if not math.isfinite(r.loss) and not self.precision.scaler.is_enabled():
                raise FerEdgeError(f"training diverged at epoch {epoch + 1} (loss {r.loss}); lower --lr")
            n = int(targets.numel())
            loss_sum += r.loss * n
            correct += int((r.logits.argmax(1) == targets).sum())
            seen += n
            skipped += int(r.skipped)
            if progress:
                progress.update(task, advance=1, description=(
                    f"epoch {epoch + 1}/{self.cfg.epochs} loss {loss_sum / seen:.4f} acc {100 * correct / seen:.1f}%"))
        if progress:
            progress.remove_task(task)
        return {"loss": loss_sum / max(seen, 1), "accuracy": correct / max(seen, 1), "skipped_steps": skipped}

    @torch.no_grad()
    def evaluate(self, loader) -> ClassificationResult:
        self.model.eval()
        logits, targets = [], []
        for images, t in loader:
            with self.precision.autocast():
                logits.append(self.recipe.predict(self.model, images.to(self.device)).cpu())
            targets.append(t)
        scores = torch.cat(logits).numpy()
        return classification_metrics(torch.cat(targets).numpy(), scores, len(self.cfg.labels),
                                      labels=list(self.cfg.labels))

    def _progress(self):
        if not self.cfg.progress:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), transient=True)

    def fit(self) -> dict[str, Any]:
        self._setup()
        cfg, sp = self.cfg, self.splits
        self.out.mkdir(parents=True, exist_ok=True)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}
        start = self._resume() if cfg.resume else 0
        sizes = {k: (len(getattr(sp, k)) if getattr(sp, k) is not None else 0) for k in ("train", "validation", "test")}
        notes = sorted(set(sp.train.notes + sp.test.notes))
        cfg.echo(f"{cfg.method} on {cfg.dataset}: {sizes['train']} train / {sizes['validation']} validation / "
                 f"{sizes['test']} test, {len(cfg.labels)} classes, {self.device}, amp {self.precision.mode}, "
                 f"batch {cfg.batch_size}, lr {cfg.lr}, {cfg.epochs} epochs")
        for n in notes:
            cfg.echo(f"note: {n}")
        progress = self._progress()
        if progress:
            progress.start()
        try:
            for epoch in range(start, cfg.epochs):
                t0 = time.perf_counter()
                train = self._train_epoch(epoch, progress)
                lr = float(self.optimizer.param_groups[0]["lr"])
                if self.scheduler is not None:
                    self.scheduler.step()
                if self.dist.is_main:
                    self._end_epoch(epoch, train, lr, time.perf_counter() - t0, sizes, notes)
                distributed.barrier(self.dist)
        finally:
            if progress:
                progress.stop()
            distributed.cleanup(self.dist)
        return {"output": str(self.out), "best": self.best, "epochs_run": len(self.history),
                "history": self.history}

    def _end_epoch(self, epoch, train, lr, seconds, sizes, notes) -> None:
        cfg = self.cfg
        results = {name: self.evaluate(loader) for name, loader in self.eval_loaders.items()}
        entry = {"epoch": epoch + 1, "lr": lr, "train": train, "seconds": round(seconds, 2),
                 **{k: v.to_dict() for k, v in results.items()}}
        self.history.append(entry)
        chosen = results[cfg.select_on]
        score = getattr(chosen, cfg.select_metric)
        improved = not self.best or score > self.best["score"]
        line = f"epoch {epoch + 1}: train loss {train['loss']:.4f} acc {100 * train['accuracy']:.1f}% | " + \
               " | ".join(f"{k} {v.summary()}" for k, v in results.items())
        summary = {k: {m: v.to_dict()[m] for m in ("accuracy", "uar", "war", "macro_f1")} for k, v in results.items()}
        if improved:
            self.best = {"epoch": epoch + 1, "score": score, "selected_on": cfg.select_on,
                         "metric": cfg.select_metric, **summary}
            self._save_weights("best.safetensors", {"epoch": epoch + 1, "metrics": summary,
                                                    "selected_on": cfg.select_on})
            self._plots(results)
            line += "  (best)"
        self._save_weights("last.safetensors", {"epoch": epoch + 1, "metrics": summary})
        self._save_state(epoch + 1)
        self._write_log(sizes, notes)
        cfg.echo(line)

    def _plots(self, results: dict[str, ClassificationResult]) -> None:
        try:
            from ..plots import plot_confusion_matrix
        except ImportError:
            return
        from ..labels import DISPLAY

        names = [DISPLAY.get(n, n) for n in self.cfg.labels]
        for split, r in results.items():
            try:
                plot_confusion_matrix(np.asarray(r.confusion), names, self.out / f"confusion_best_{split}.png",
                                      title=f"{self.cfg.method} on {self.cfg.dataset} {split}, epoch "
                                            f"{self.best['epoch']}: top-1 {100 * r.accuracy:.1f}%, UAR {100 * r.uar:.1f}%")
            except FerEdgeError:  # matplotlib missing: the JSON log still has the matrix
                return

    def _write_log(self, sizes, notes) -> None:
        log = {"config": self.cfg.loggable(), "recipe": self.recipe.describe(self.cfg), "sizes": sizes,
               "notes": notes, "labels": list(self.cfg.labels), "best": self.best, "history": self.history}
        tmp = self.out / "log.json.tmp"
        tmp.write_text(json.dumps(log, indent=2))
        os.replace(tmp, self.out / "log.json")


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run one training; returns the best epoch's metrics, the history and the output folder."""
    return Trainer(cfg).fit()
