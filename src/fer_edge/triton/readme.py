"""The README.md of a generated repository: what is in it and how to start Triton on it."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .configs import Serving
    from .repository import Repository

CONTAINER = "nvcr.io/nvidia/tritonserver:24.10-py3"  # Triton 2.51, the release the tests run (nvidia-pytriton 0.7.0)


def write_readme(repo: "Repository", serving: "Serving", backend: str) -> None:
    rows = []
    for name, clf in repo.classifiers:
        tensors = ", ".join(f"{t.name} {t.dims}" for t in clf.inputs) + " -> " + \
            ", ".join(f"{t.name} {t.dims}" for t in clf.outputs)
        rows.append(f"| `{name}` | {repo.models[name]} | {clf.metadata.method}, {clf.metadata.precision}, "
                    f"{len(clf.metadata.labels)} classes | {tensors} |")
    if repo.faces:
        rows.append(f"| `{repo.faces}` | python (BLS) | the face pipeline: detect ({serving.detector}), align, classify "
                    f"with `{repo.classifiers[0][0]}` | IMAGE (JPEG/PNG bytes, UINT8 [-1]) -> BOXES, SCORES, "
                    "KEYPOINTS, PROBS, LABELS |")
    gpu = " --gpus all" if serving.device == "gpu" else ""
    needs_fer_edge = backend == "python" or repo.faces is not None
    build = (f"docker build -t fer-edge-triton - <<'EOF'\nFROM {CONTAINER}\nRUN pip install fer-edge\nEOF\n"
             if needs_fer_edge else "")
    image = "fer-edge-triton" if needs_fer_edge else CONTAINER
    why = ("The python-backend models import fer-edge, hence the small image built first (Triton's python backend "
           "runs the container's `python3`). " if needs_fer_edge else "")
    example = _FRAME_EXAMPLE.format(model=repo.faces) if repo.faces else _CROPS_EXAMPLE.format(
        model=repo.classifiers[0][0], input=repo.classifiers[0][1].metadata.input.name,
        output=repo.classifiers[0][1].metadata.output.name)
    text = f"""# Triton model repository (written by `fer-edge triton-repo`)

| model | backend | what | tensors (batch dimension first, not listed) |
|---|---|---|---|
{chr(10).join(rows)}

Each config carries the artifact's fer-edge metadata in `parameters` (`fer_edge_metadata`, the JSON
that `fer_edge.load` reads), so preprocessing and labels travel with the model. Classifier inputs
are preprocessed face crops (FP32, NCHW, as the metadata's `input` says); the outputs are the raw
model outputs (`fer_edge` turns them into probabilities by `output.kind`).

## Start Triton

```bash
{build}docker run --rm{gpu} -p 8000:8000 -p 8001:8001 -p 8002:8002 -v "$PWD":/models \\
    {image} tritonserver --model-repository=/models
```

{why}A TensorRT `model.plan` only loads on the GPU architecture and TensorRT version it was built with: build
it on the serving machine, with the TensorRT of the container's release. Without Docker, the
`nvidia-pytriton` wheel ships a `tritonserver` with the python backend only (it needs numpy<2, so
give it its own virtual environment); fer-edge's tests start that one.

{example}Scaling out: run one Triton per GPU or machine on this same repository (or an object-store copy
of it) behind a load balancer; KServe on Kubernetes serves it with the same v2 protocol.
"""
    (repo.folder / "README.md").write_text(text)



_FRAME_EXAMPLE = """## Send a frame

```python
import numpy as np, tritonclient.http as http
client = http.InferenceServerClient("127.0.0.1:8000")
data = np.frombuffer(open("photo.jpg", "rb").read(), np.uint8)
image = http.InferInput("IMAGE", [len(data)], "UINT8"); image.set_data_from_numpy(data)
result = client.infer("{model}", [image])
print(result.as_numpy("BOXES"), result.as_numpy("LABELS"), result.as_numpy("PROBS"))
```

"""

_CROPS_EXAMPLE = """## Send face crops

```python
import fer_edge, tritonclient.http as http
from fer_edge.preprocess import preprocess_images
model = fer_edge.load("model.onnx")                      # the artifact: its metadata says how to preprocess
x = preprocess_images(crops, model.metadata.input)       # crops: aligned BGR face images
client = http.InferenceServerClient("127.0.0.1:8000")
tensor = http.InferInput("{input}", list(x.shape), "FP32"); tensor.set_data_from_numpy(x)
raw = client.infer("{model}", [tensor]).as_numpy("{output}")
print(model.postprocess({{"{output}": raw}}).names)
```

"""
