"""The shared trainer: SAM, resume, the CLI's errors, and a short real POSTER V2 training run."""
from __future__ import annotations

import copy
import json
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from fer_edge.training.sam import SAM  # noqa: E402

# A reduced POSTER V2 (one IR unit per stage, one narrow ViT block, 64x64 input) that trains on CPU.
REDUCED_POSTER = dict(img_size=64, ir_units=(1, 1, 1), vit_depth=1, embed_dim=64, vit_heads=4)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: more threads only oversubscribe
    yield
    torch.set_num_threads(n)


def _regression(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 5, generator=g)
    y = x @ torch.randn(5, 1, generator=g) + 0.1 * torch.randn(64, 1, generator=g)
    model = torch.nn.Linear(5, 1)
    torch.nn.init.zeros_(model.weight)
    return model, x, y


def test_sam_step_matches_its_definition():
    model, x, y = _regression()
    rho = 0.05
    opt = SAM(torch.optim.Adam(model.parameters(), lr=0.1), rho=rho)
    loss_fn = lambda m: torch.nn.functional.mse_loss(m(x), y)  # noqa: E731

    # by hand: e = rho * g / ||g||, gradient at w + e, Adam step from w with that gradient
    ref = copy.deepcopy(model)
    w0 = [p.detach().clone() for p in ref.parameters()]
    grads = torch.autograd.grad(loss_fn(ref), list(ref.parameters()))
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    with torch.no_grad():
        for p, g in zip(ref.parameters(), grads):
            p.add_(rho * g / norm)
    grads2 = torch.autograd.grad(loss_fn(ref), list(ref.parameters()))
    with torch.no_grad():
        for p, w in zip(ref.parameters(), w0):
            p.copy_(w)
    adam = torch.optim.Adam(ref.parameters(), lr=0.1)
    for p, g in zip(ref.parameters(), grads2):
        p.grad = g.clone()
    adam.step()

    loss_fn(model).backward()
    before = [p.detach().clone() for p in model.parameters()]
    opt.first_step()
    moved = torch.sqrt(sum(((p - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    assert moved.item() == pytest.approx(rho, rel=1e-4)  # the perturbation has length rho
    loss_fn(model).backward()
    opt.second_step()
    for p, r in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, r)


def test_sam_closure_trains_and_schedules_reach_the_base_optimizer():
    model, x, y = _regression(1)
    opt = SAM(torch.optim.Adam(model.parameters(), lr=0.05), rho=0.05)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    loss_fn = lambda: torch.nn.functional.mse_loss(model(x), y)  # noqa: E731
    first = loss_fn().item()
    for _ in range(60):
        opt.zero_grad()
        loss_fn().backward()

        def closure():
            loss = loss_fn()
            loss.backward()
            return loss

        opt.step(closure)
    assert loss_fn().item() < 0.2 * first
    sched.step()
    assert opt.base.param_groups[0]["lr"] == pytest.approx(0.025)
    assert opt.state_dict()["state"][0]["step"] == 60  # Adam's state, saved for resume


def _cfg(tmp_path, shared_data, **kw):
    from fer_edge.training import TrainConfig

    base = dict(method="poster_v2", dataset="fer2013", data_path=shared_data, output=tmp_path / "run",
                epochs=1, batch_size=16, lr=1e-3, limit=48, val_fraction=0.1, workers=0, progress=False,
                model_kwargs=REDUCED_POSTER, echo=lambda line: None)
    base.update(kw)
    return TrainConfig(**base)


def test_resume_continues_epoch_counter_and_optimizer(tmp_path, shared_data):
    from fer_edge.checkpoint import load_checkpoint
    from fer_edge.training import train

    out_a, out_b = tmp_path / "a", tmp_path / "b"
    train(_cfg(tmp_path, shared_data, output=out_a, epochs=1))
    state1 = torch.load(out_a / "train_state.pt", weights_only=True)
    steps1 = state1["optimizer"]["state"][0]["step"]
    assert state1["epoch"] == 1 and steps1 > 0
    lr1 = state1["optimizer"]["param_groups"][0]["lr"]

    r = train(_cfg(tmp_path, shared_data, output=out_a, epochs=2, resume=True))
    state2 = torch.load(out_a / "train_state.pt", weights_only=True)
    assert state2["epoch"] == 2 and [h["epoch"] for h in r["history"]] == [1, 2]
    assert state2["optimizer"]["state"][0]["step"] == 2 * steps1  # Adam inside SAM kept counting
    assert state2["optimizer"]["param_groups"][0]["lr"] == pytest.approx(lr1 * 0.98)  # ExponentialLR resumed

    # the same two epochs without interruption give the same weights
    train(_cfg(tmp_path, shared_data, output=out_b, epochs=2))
    a, meta = load_checkpoint(out_a / "last.safetensors")
    b, _ = load_checkpoint(out_b / "last.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)
    assert meta.method == "poster_v2" and meta.extra["training"]["epoch"] == 2
    assert tuple(meta.input.size) == (64, 64)
    log = json.loads((out_a / "log.json").read_text())
    assert {"validation", "test"} <= set(log["history"][-1]) and "uar" in log["history"][-1]["test"]


def test_train_errors_are_one_line(tmp_path, shared_data):
    from fer_edge.cli.main import main
    from fer_edge.errors import FerEdgeError
    from fer_edge.training import Trainer

    assert main(["train", "--method", "poster_v2", "--dataset", "rafdb", "--data-path", str(tmp_path / "none")]) == 2
    assert main(["train", "--method", "poster_v2", "--dataset", "fer2013", "--data-path", str(shared_data),
                 "--ir50", str(tmp_path / "ir50.pth")]) == 2
    with pytest.raises(FerEdgeError, match="val-fraction"):
        Trainer(_cfg(tmp_path, shared_data, val_fraction=0.0))
    with pytest.raises(FerEdgeError, match="--resume"):
        Trainer(_cfg(tmp_path, shared_data, resume=True)).fit()


@pytest.mark.slow
def test_short_real_poster_v2_training_learns(tmp_path, shared_data):
    """Reduced POSTER V2 with the authors' recipe (SAM over Adam, ExponentialLR, flip + RandomErasing)
    on ~900 real FER2013 training faces; held out: ~600 public_test faces. Chance is 1/7 for UAR."""
    from fer_edge.training import train

    t0 = time.perf_counter()
    r = train(_cfg(tmp_path, shared_data, epochs=4, batch_size=32, lr=1e-3, limit=900, val_fraction=0.1))
    seconds = time.perf_counter() - t0
    test = r["history"][-1]["test"]
    counts = np.asarray(test["confusion"]).sum(axis=1)
    majority = counts.max() / counts.sum()  # what predicting the commonest class scores
    print(f"short POSTER V2 run: {seconds:.0f} s, test top-1 {test['accuracy']:.3f} UAR {test['uar']:.3f} "
          f"(majority share {majority:.3f}), best {r['best']}")
    assert test["uar"] > 1 / 7 + 0.05
    assert test["accuracy"] > majority + 0.03
    assert (tmp_path / "run" / "confusion_best_validation.png").is_file()
