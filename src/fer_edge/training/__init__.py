"""Training (PyTorch side): one trainer shared by every method, plus a recipe per method.

A recipe (:mod:`fer_edge.training.recipes`) holds what is specific to a method: its default
hyper-parameters per data set, model construction, optimizer and schedule, augmentations, sampler and
training step. :class:`~fer_edge.training.trainer.Trainer` does the rest for all of them: data,
mixed precision, DistributedDataParallel, checkpoints, resume, per-epoch metrics and logs.
"""
from .trainer import TrainConfig, Trainer, train

__all__ = ["TrainConfig", "Trainer", "train"]
