"""Hostile checkpoints: nothing from a user's file ever runs, through any entry point that reads one.

The corpus is written byte by byte (raw pickle opcodes), so each file holds exactly the payload meant.
Every payload tries to create a marker file; a control test proves each one does so under plain
``pickle``. Formats: a bare pickle, a legacy ``torch.save`` file with the payload as its first record
(where torch's legacy reader used to call plain ``pickle.load``) or in its body, and a torch zip file
with the payload in ``data.pkl``. Containers hide the payload in dicts, OrderedDicts, lists, sets, a
tensor's backward hooks, a Parameter's state and a tensor's BUILD state. Control files of the same hand-made layouts without
a payload load in ``torch.load`` and in our reader, so the refusals are not a layout mistake.
"""
from __future__ import annotations

import io
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from fer_edge.checkpoint import check_checkpoint_file, load_into, read_foreign_checkpoint  # noqa: E402
from fer_edge.errors import FerEdgeError  # noqa: E402

MAGIC, PROTOCOL = 0x1950A86A20F9469CFC6C, 1001
DATA = struct.pack("<2f", 1.5, -2.0)  # the one storage of the files with a tensor: [1.5, -2.0]


# --- raw pickle opcodes ----------------------------------------------------------------------------

def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def text(value: str) -> bytes:
    raw = value.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def num(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def call(func: bytes, *args: bytes) -> bytes:
    return func + tup(*args) + b"R"


def lst(*items: bytes) -> bytes:
    return b"](" + b"".join(items) + b"e"


def dct(*pairs: tuple[bytes, bytes]) -> bytes:
    return b"}(" + b"".join(k + v for k, v in pairs) + b"u"


def record(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


FALSE = b"\x89"
ORDERED_DICT = glob("collections", "OrderedDict")


def tensor(legacy: bool, hooks: bytes = call(ORDERED_DICT)) -> bytes:
    """_rebuild_tensor_v2 over storage '0' (2 floats), as torch.save writes it."""
    pid = tup(text("storage"), glob("torch", "FloatStorage"), text("0"), text("cpu"), num(2),
              *([b"N"] if legacy else [])) + b"Q"
    return call(glob("torch._utils", "_rebuild_tensor_v2"), pid, num(0), tup(num(2)), tup(num(1)), FALSE, hooks)


def tensor_state(legacy: bool, hook: bytes) -> bytes:
    """A tensor followed by BUILD: Tensor.__setstate__((requires_grad, _, backward_hooks)) would attach the hook."""
    return tensor(legacy) + tup(b"\x88", b"N", call(ORDERED_DICT, lst(tup(num(0), hook)))) + b"b"


# --- payloads, containers, file layouts ---------------------------------------------------------------

def payloads(marker: Path) -> dict[str, bytes]:
    code, cmd = f"open({str(marker)!r}, 'w').close()", text(f"touch '{marker}'")
    getattr_ = glob("builtins", "getattr")
    touch = lst(text("touch"), text(str(marker)))
    return {
        "exec": call(glob("builtins", "exec"), text(code)),
        "eval": call(glob("builtins", "eval"), text(code)),
        "os.system": call(glob("os", "system"), cmd),
        "subprocess.Popen": call(call(getattr_, call(glob("subprocess", "Popen"), touch), text("wait"))),
        "subprocess.run": call(glob("subprocess", "run"), touch),
        "getattr chain": call(call(getattr_, call(glob("builtins", "__import__"), text("os")), text("system")), cmd),
    }


def containers(payload: bytes, legacy: bool | None) -> dict[str, bytes]:
    """Where the payload hides; the last three need a storage (legacy or zip id), so only exist in torch files."""
    sd = text("state_dict")
    out = {
        "bare": payload,
        "dict": dct((sd, dct((text("w"), payload)))),
        "OrderedDict": dct((sd, call(ORDERED_DICT, lst(tup(text("w"), payload))))),
        "list": dct((text("history"), lst(num(1), payload))),
        "set": dct((text("tags"), call(glob("builtins", "set"), lst(payload)))),
    }
    if legacy is not None:
        out["backward hook"] = dct((sd, dct((text("w"), tensor(legacy, call(ORDERED_DICT, lst(tup(num(0), payload))))))))
        out["Parameter state"] = dct((sd, dct((text("w"), call(
            glob("torch._utils", "_rebuild_parameter_with_state"), tensor(legacy), FALSE, call(ORDERED_DICT),
            dct((text("x"), payload)))))))
        out["Tensor state"] = dct((sd, dct((text("w"), tensor_state(legacy, payload)))))
    return out


def legacy_file(main: bytes, *, first: bytes | None = None) -> bytes:
    """torch's legacy layout: magic, protocol, sys_info, main pickle, storage keys, raw storages."""
    storages = b"FloatStorage" in main
    sys_info = {"protocol_version": PROTOCOL, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    head = first if first is not None else pickle.dumps(MAGIC, protocol=2)
    return (head + pickle.dumps(PROTOCOL, protocol=2) + pickle.dumps(sys_info, protocol=2) + record(main)
            + pickle.dumps(["0"] if storages else [], protocol=2) + (struct.pack("<q", 2) + DATA if storages else b""))


def zip_file(main: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", record(main))
        zf.writestr("archive/byteorder", "little")
        if b"FloatStorage" in main:
            zf.writestr("archive/data/0", DATA)
        zf.writestr("archive/version", "3\n")
    return buf.getvalue()


BENIGN_LEGACY = dct((text("state_dict"), dct((text("w"), tensor(True)))))
BENIGN_ZIP = dct((text("state_dict"), dct((text("w"), tensor(False)))))


def corpus(marker: Path) -> dict[str, bytes]:
    files = {}
    for pname, payload in payloads(marker).items():
        for cname, body in containers(payload, None).items():
            files[f"pickle/{cname}/{pname}"] = record(body)
            files[f"legacy first record/{cname}/{pname}"] = legacy_file(BENIGN_LEGACY, first=record(body))
        for cname, body in containers(payload, True).items():
            files[f"legacy body/{cname}/{pname}"] = legacy_file(body)
        for cname, body in containers(payload, False).items():
            files[f"zip/{cname}/{pname}"] = zip_file(body)
    return files


CASES = sorted(corpus(Path("/m")))  # names only; each test writes its own files under tmp_path
PAYLOADS = sorted(payloads(Path("/m")))
# The command line runs each layout/container once, the payloads taking turns (a CLI call costs ~0.1 s;
# the full corpus goes through check_checkpoint_file, the commands' first step, above).
LAYOUTS = sorted({c.rsplit("/", 1)[0] for c in CASES})
CLI_CASES = [f"{layout}/{PAYLOADS[i % len(PAYLOADS)]}" for i, layout in enumerate(LAYOUTS)]


def hostile(tmp_path: Path, case: str) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    path = tmp_path / "hostile.pth"
    path.write_bytes(corpus(marker)[case])
    return path, marker


def assert_refused(exc: BaseException, marker: Path) -> None:
    assert isinstance(exc, FerEdgeError), repr(exc)
    message = str(exc)
    assert message and "\n" not in message, message
    assert not marker.exists(), "the payload ran"


# --- controls: the payloads are live, the hand-made layouts are real -------------------------------

@pytest.mark.parametrize("name", PAYLOADS)
def test_each_payload_really_runs_under_plain_pickle(tmp_path, name):
    marker = tmp_path / "PWNED"
    pickle.loads(record(payloads(marker)[name]))
    assert marker.exists()


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_hand_made_layouts_are_real_torch_files(tmp_path, layout):
    path = tmp_path / f"benign_{layout}.pth"
    path.write_bytes(legacy_file(BENIGN_LEGACY) if layout == "legacy" else zip_file(BENIGN_ZIP))
    expected = torch.tensor([1.5, -2.0])
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], expected)
    assert torch.equal(read_foreign_checkpoint(path)["w"], expected)
    check_checkpoint_file(path)


# --- every Python entry point -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def entry_points():
    from fer_edge.models import create_model
    from fer_edge.models.clip_common import read_clip_state_dict
    from fer_edge.models.poster_v2 import load_backbones
    from fer_edge.runtimes.torch import read_torch_artifact

    mini = create_model("mini_xception")
    poster = create_model("poster_v2", img_size=64, ir_units=(1, 1, 1), vit_depth=1, embed_dim=64, vit_heads=4)
    return {
        "read_foreign_checkpoint": read_foreign_checkpoint,
        "check_checkpoint_file": check_checkpoint_file,
        "load_into": lambda p: load_into(mini, p, method="mini_xception"),
        "read_clip_state_dict": read_clip_state_dict,
        "torch runtime": read_torch_artifact,
        "load_backbones ir50": lambda p: load_backbones(poster, ir50=str(p), echo=lambda line: None),
        "load_backbones mobilefacenet": lambda p: load_backbones(poster, mobilefacenet=str(p), echo=lambda line: None),
    }


@pytest.mark.parametrize("case", CASES)
def test_python_entry_points_refuse_without_running_anything(tmp_path, case, entry_points):
    path, marker = hostile(tmp_path, case)
    for name, read in entry_points.items():
        with pytest.raises(Exception) as info:
            read(path)
        assert_refused(info.value, marker)


def test_refusal_names_the_code_it_would_have_run(tmp_path):
    path, _ = hostile(tmp_path, "legacy first record/bare/os.system")
    with pytest.raises(FerEdgeError, match=r"hostile\.pth is refused: it refers to os\.system, which runs code"):
        read_foreign_checkpoint(path)


# --- the command line ---------------------------------------------------------------------------------

def cli_commands(path: Path, tmp_path: Path) -> dict[str, list[str]]:
    out = str(tmp_path / "out")
    train = ["train", "--dataset", "fer2013", "--data-path", str(tmp_path), "--output", out]
    return {
        "import --checkpoint": ["import", "--method", "mini_xception", "--checkpoint", str(path), "--output", out + ".safetensors"],
        "export --weights": ["export", "--method", "mini_xception", "--weights", str(path), "--output", out],
        "export --clip-weights": ["export", "--method", "mini_xception", "--clip-weights", str(path), "--output", out],
        "train --ir50": train + ["--method", "poster_v2", "--ir50", str(path)],
        "train --mobilefacenet": train + ["--method", "poster_v2", "--mobilefacenet", str(path)],
        "train --clip-weights": train + ["--method", "ceprompt", "--clip-weights", str(path)],
        "train --stage1-weights": train + ["--method", "ceprompt", "--stage1-weights", str(path)],
    }


@pytest.fixture
def no_model_building(monkeypatch):
    """A hostile file is refused before any model is built (POSTER V2 or a CLIP model take seconds)."""
    import fer_edge.models

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built before the checkpoint was checked")

    monkeypatch.setattr(fer_edge.models, "create_model", refuse)


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_refuses_in_one_line_before_building_a_model(tmp_path, case, capsys, no_model_building):
    from fer_edge.cli.main import main

    path, marker = hostile(tmp_path, case)
    for name, argv in cli_commands(path, tmp_path).items():
        code = main(argv)
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert code == 2, f"{name}: exit {code}, {err}"
        lines = err.splitlines()  # progress lines (export's) may come first; the error is the one last line
        assert "Traceback" not in err and lines[-1].startswith("error:"), f"{name}: {err}"
        assert sum(line.startswith("error:") for line in lines) == 1, f"{name}: {err}"
        assert "exported" not in captured.out and "tensors loaded" not in captured.out, name
        assert not marker.exists(), f"{name}: the payload ran"
    assert not (tmp_path / "out.safetensors").exists()  # import wrote nothing


def test_cli_in_a_subprocess_prints_one_line_and_no_traceback(tmp_path):
    path, marker = hostile(tmp_path, "legacy first record/dict/exec")
    proc = subprocess.run([sys.executable, "-m", "fer_edge.cli.main", "import", "--method", "mini_xception",
                           "--checkpoint", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "refused" in proc.stderr and "builtins.exec" in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("case", ["legacy first record/bare/exec", "zip/dict/os.system"])
def test_resume_refuses_a_hostile_training_state(tmp_path, case):
    """--resume reads train_state.pt from the user's --output folder: the same reader, classes refused."""
    from fer_edge.training import TrainConfig, Trainer

    run = tmp_path / "run"
    run.mkdir()
    (run / "last.safetensors").write_bytes(b"")  # never reached: the state file is read first
    path, marker = hostile(tmp_path, case)
    path.rename(run / "train_state.pt")
    cfg = TrainConfig(method="mini_xception", dataset="fer2013", data_path=tmp_path, output=run, resume=True,
                      echo=lambda line: None)
    with pytest.raises(FerEdgeError) as info:
        Trainer(cfg)._resume()  # what fit() calls after building data and model
    assert_refused(info.value, marker)


# --- what is read, and what is never applied -------------------------------------------------------

def test_foreign_callable_outside_the_refusal_list_stays_inert(tmp_path):
    """Safety does not rest on the list of refused modules: any other name is an inert placeholder."""
    marker = tmp_path / "PWNED"
    touch = call(glob("pathlib", "Path.touch"), call(glob("pathlib", "Path"), text(str(marker))))
    pickle.loads(b"\x80\x04" + touch + b".")  # live under plain pickle (protocol 4 resolves dotted names)
    assert marker.exists()
    marker.unlink()
    for name, data in {"legacy": legacy_file(dct((text("state_dict"), dct((text("w"), tensor(True)))), (text("x"), touch))),
                       "zip": zip_file(dct((text("state_dict"), dct((text("w"), tensor(False)))), (text("x"), touch)))}.items():
        path = tmp_path / f"{name}.pth"
        path.write_bytes(data)
        assert torch.equal(read_foreign_checkpoint(path)["w"], torch.tensor([1.5, -2.0])), name
        assert not marker.exists(), name
    path.write_bytes(legacy_file(BENIGN_LEGACY, first=record(touch)))  # header records admit no class at all
    with pytest.raises(FerEdgeError, match="refused: it holds a pickled pathlib.Path.touch"):
        read_foreign_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("legacy", [True, False])
def test_parameter_state_and_backward_hooks_are_never_applied(tmp_path, legacy):
    write = legacy_file if legacy else zip_file
    state = dct((text("foo"), num(1)), (text("_backward_hooks"), dct((num(0), ORDERED_DICT))))
    param = call(glob("torch._utils", "_rebuild_parameter_with_state"), tensor(legacy), FALSE, call(ORDERED_DICT), state)
    path = tmp_path / "param.pth"
    path.write_bytes(write(dct((text("state_dict"), dct((text("w"), param))))))
    w = read_foreign_checkpoint(path)["w"]
    assert type(w) is torch.Tensor and not hasattr(w, "foo") and not w._backward_hooks
    assert torch.equal(w, torch.tensor([1.5, -2.0]))
    hooked = dct((text("state_dict"), dct((text("w"), tensor(legacy, call(ORDERED_DICT, lst(tup(num(0), ORDERED_DICT))))))))
    path.write_bytes(write(hooked))
    with pytest.raises(FerEdgeError, match="backward hooks"):
        read_foreign_checkpoint(path)
    path.write_bytes(write(dct((text("state_dict"), dct((text("w"), tensor_state(legacy, ORDERED_DICT)))))))
    with pytest.raises(FerEdgeError, match="sets the state of a Tensor"):
        read_foreign_checkpoint(path)


def test_storage_records_cannot_claim_more_memory_than_the_file_holds(tmp_path):
    pid = tup(text("storage"), glob("torch", "FloatStorage"), text("0"), text("cpu"), num(2**30), b"N") + b"Q"
    big = call(glob("torch._utils", "_rebuild_tensor_v2"), pid, num(0), tup(num(2**30)), tup(num(1)), FALSE,
               call(ORDERED_DICT))
    path = tmp_path / "huge.pth"
    path.write_bytes(legacy_file(dct((text("w"), big)))[:-8])  # claims 4 GiB in a file of a few hundred bytes
    with pytest.raises(FerEdgeError, match="storages larger than the file"):
        read_foreign_checkpoint(path)


class Recorder:
    """Stands in for the authors' pickled training recorder; its code must never run on import."""

    ran: list[str] = []

    def __init__(self):
        self.losses = [0.5, 0.25]

    def __setstate__(self, state):
        Recorder.ran.append("__setstate__")
        self.__dict__.update(state)


@pytest.mark.parametrize("zipped", [False, True], ids=["legacy", "zip"])
def test_authors_layout_with_recorder_and_parameters_still_imports(tmp_path, zipped, capsys):
    from safetensors.torch import load_file

    from fer_edge.cli.main import main
    from fer_edge.models import create_model

    torch.manual_seed(0)
    src = create_model("mini_xception")
    for p in src.parameters():
        p.data.normal_()
    sd = {"module." + k: (torch.nn.Parameter(v.clone()) if v.is_floating_point() else v.clone())
          for k, v in src.state_dict().items()}
    path = tmp_path / "authors.pth"
    torch.save({"state_dict": sd, "recorder": Recorder(), "epoch": 7, "best_acc": torch.tensor(65.2)}, path,
               _use_new_zipfile_serialization=zipped)
    loaded = read_foreign_checkpoint(path)
    assert set(loaded) == set(src.state_dict())
    for k, v in src.state_dict().items():
        assert type(loaded[k]) is torch.Tensor and torch.equal(loaded[k], v), k
    out = tmp_path / "ours.safetensors"
    assert main(["import", "--method", "mini_xception", "--checkpoint", str(path), "--output", str(out)]) == 0, \
        capsys.readouterr().err
    mine = load_file(str(out))
    for k, v in src.state_dict().items():
        assert torch.equal(mine[k], v), k
    assert Recorder.ran == []


def test_names_chosen_by_the_file_cannot_break_the_one_line_message(tmp_path):
    from fer_edge.runtimes.torch import read_torch_artifact

    odd = b"\x8c" + bytes([len(b"evil\nerror: all fine")]) + b"evil\nerror: all fine" + b"\x8c\x01x\x93"  # STACK_GLOBAL
    path = tmp_path / "odd.pt"
    path.write_bytes(zip_file(dct((text("state_dict"), dct((text("w"), tensor(False)))), (text("x"), odd))))
    with pytest.raises(FerEdgeError) as info:
        read_torch_artifact(path)  # the runtime reads no classes at all: the name is in the message
    assert "\n" not in str(info.value) and "evil\\nerror" in str(info.value)
