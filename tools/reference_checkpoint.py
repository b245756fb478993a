"""Write a checkpoint in the AUTHORS' layout whose weights come from ../shared/reference's fill.py.

It stands in for a released checkpoint where none can be downloaded: the names, shapes, ``module.``
prefixes and file layout are the authors', the values are the deterministic fill the golden outputs
were made with. Good for plumbing, parity, INT8 agreement and latency; meaningless for accuracy.

    python tools/reference_checkpoint.py poster_v2 out/poster_v2_filled.pth

Integer buffers that are structural constants (e.g. relative-position indices) are taken from a
freshly built model, as the reference READMEs prescribe; a float fill would zero them.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"


def _fill_module(reference: Path):
    spec = importlib.util.spec_from_file_location("fer_reference_fill", reference / "fill.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def filled_state_dict(method_dir: str, reference: Path = REFERENCE, structural: dict | None = None) -> dict:
    """{official name: torch tensor} for keys.tsv (and text_keys.tsv where present) of one method."""
    import torch

    fill = _fill_module(reference)
    keys = []
    for name in ("keys.tsv", "text_keys.tsv"):
        if (reference / method_dir / name).is_file():
            keys += fill.read_keys(reference / method_dir / name)
    sd = {k: torch.from_numpy(v) for k, v in fill.fill_state_dict(keys).items()}
    for name, value in (structural or {}).items():
        if name in sd:
            sd[name] = value.clone()
    return sd


def structural_buffers(method: str) -> dict:
    """Integer buffers of our model (persistent or recomputed), by name: structural constants."""
    import torch

    from fer_edge.models import create_model

    model = create_model(method)
    return {k: v for k, v in model.named_buffers()
            if v.dtype == torch.int64 and not k.endswith("num_batches_tracked")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("method", help="registered method, e.g. poster_v2")
    ap.add_argument("output", type=Path)
    ap.add_argument("--reference-dir", type=Path, default=REFERENCE)
    ap.add_argument("--method-dir", help="folder under the reference dir (default: the method name)")
    args = ap.parse_args(argv)
    import torch

    folder = args.method_dir or args.method
    if not (args.reference_dir / folder / "keys.tsv").is_file():
        print(f"no keys.tsv for {folder} under {args.reference_dir}", file=sys.stderr)
        return 2
    sd = filled_state_dict(folder, args.reference_dir, structural_buffers(args.method))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # the authors save DataParallel models: every name carries "module."
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 0}, args.output)
    print(f"wrote {args.output} ({len(sd)} tensors, authors' layout, fill.py values)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
