"""config.pbtxt of each model a fer-edge Triton repository holds.

* the classifier on its native backend: ``onnxruntime`` (model.onnx), ``openvino`` (model.xml/.bin)
  or ``tensorrt_plan`` (model.plan); or on the ``python`` backend running fer-edge itself;
* the face pipeline, a ``python`` model that decodes a frame, detects and aligns the faces and asks
  the classifier for them in one BLS request (business logic scripting: a request from model to
  model inside the server, which joins the classifier's dynamic batching with other requests).

fer-edge's metadata travels in each config's ``parameters`` (``fer_edge_metadata``: the artifact's JSON).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import FerEdgeError
from .artifacts import Classifier
from .pbtxt import Enum, parameters, render

NATIVE = {"onnx": ("backend", "onnxruntime", "model.onnx"), "openvino": ("backend", "openvino", "model.xml"),
          "tensorrt": ("platform", "tensorrt_plan", "model.plan")}
ACCELERATORS = ("none", "tensorrt", "openvino")
FACES_INPUT = "IMAGE"
# name -> (data type, dims); C is the classifier's class count
FACES_OUTPUTS = {"BOXES": ("TYPE_FP32", [-1, 4]), "SCORES": ("TYPE_FP32", [-1]), "KEYPOINTS": ("TYPE_FP32", [-1, 6, 2]),
                 "PROBS": ("TYPE_FP32", [-1, "C"]), "LABELS": ("TYPE_STRING", [-1])}


@dataclass
class Serving:
    """How Triton should run the models (the `triton-repo` options)."""

    max_batch: int = 32
    max_delay_us: int = 2000
    instances: int = 1
    device: str = "cpu"  # cpu or gpu: the instance group's kind
    accelerator: str = "none"  # onnxruntime only: tensorrt (GPU) or openvino (CPU) execution accelerator
    precision: str = "fp16"  # the ONNX Runtime TensorRT accelerator's precision_mode
    performance_hint: str = "LATENCY"  # openvino backend: LATENCY or THROUGHPUT
    detector: str = "blazeface"
    max_detect_side: int = 2048
    max_pixels: int = 40_000_000

    def check(self) -> "Serving":
        if self.device not in ("cpu", "gpu"):
            raise FerEdgeError(f"--device must be cpu or gpu for Triton instance groups, got {self.device!r}")
        if self.accelerator not in ACCELERATORS:
            raise FerEdgeError(f"--accelerator must be one of {', '.join(ACCELERATORS)}, got {self.accelerator!r}")
        if self.accelerator == "tensorrt" and self.device != "gpu":
            raise FerEdgeError("--accelerator tensorrt runs on GPU instances: add --device gpu")
        if self.accelerator == "openvino" and self.device != "cpu":
            raise FerEdgeError("--accelerator openvino is ONNX Runtime's CPU accelerator: use --device cpu")
        if self.precision not in ("fp16", "fp32"):
            raise FerEdgeError(f"--precision must be fp16 or fp32, got {self.precision!r}")
        if self.performance_hint not in ("LATENCY", "THROUGHPUT"):
            raise FerEdgeError(f"--performance-hint must be LATENCY or THROUGHPUT, got {self.performance_hint!r}")
        for name in ("max_batch", "instances", "max_detect_side", "max_pixels"):
            if int(getattr(self, name)) < 1:
                raise FerEdgeError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.max_delay_us < 0:
            raise FerEdgeError(f"--max-delay-us must be >= 0, got {self.max_delay_us}")
        return self


def metadata_parameters(clf: Classifier) -> dict[str, str]:
    m = clf.metadata
    return {"fer_edge_metadata": m.to_json(), "fer_edge_method": m.method, "fer_edge_labels": ",".join(m.labels),
            "fer_edge_precision": m.precision, "fer_edge_face_template": m.input.face_template}


def classifier_config(name: str, clf: Classifier, serving: Serving, backend: str, artifact_file: str) -> str:
    """The classifier's config; `backend` is "native" or "python" (fer-edge's runtime inside Triton)."""
    if clf.kind == "tensorrt" and serving.device != "gpu":
        raise FerEdgeError(f"{clf.path.name} is a TensorRT engine: its Triton model runs on GPU instances; "
                           "add --device gpu")
    max_batch = min(serving.max_batch, clf.fixed_batch) if clf.fixed_batch else serving.max_batch
    config: dict = {"name": name}
    params = metadata_parameters(clf)
    if backend == "python":
        config["backend"] = "python"
        params.update(artifact=artifact_file, device="cuda" if serving.device == "gpu" else "cpu")
    else:
        key, value, default_file = NATIVE[clf.kind]
        config[key] = value
        config["default_model_filename"] = default_file
        if clf.kind == "openvino":
            params.update(PERFORMANCE_HINT=serving.performance_hint, TARGET_DEVICE="CPU")
    config["max_batch_size"] = max_batch
    config["input"] = [{"name": t.name, "data_type": Enum("TYPE_FP32"), "dims": t.dims} for t in clf.inputs]
    config["output"] = [{"name": t.name, "data_type": Enum("TYPE_FP32"), "dims": t.dims} for t in clf.outputs]
    config["dynamic_batching"] = _batching(max_batch, serving.max_delay_us)
    config["instance_group"] = [_instances(serving, clf.kind == "tensorrt" and backend != "python")]
    if backend != "python" and clf.kind == "onnx" and serving.accelerator != "none":
        config["optimization"] = {"execution_accelerators": _accelerator(serving)}
    config["parameters"] = parameters(params)
    return render(config)


def faces_config(name: str, classifier_name: str, clf: Classifier, serving: Serving) -> str:
    """The face pipeline: one encoded frame in, its faces out (the classifier is called by BLS)."""
    outputs = [{"name": out, "data_type": Enum(dtype), "dims": [len(clf.metadata.labels) if d == "C" else d for d in dims]}
               for out, (dtype, dims) in FACES_OUTPUTS.items()]
    params = metadata_parameters(clf)
    params.update(classifier=classifier_name, classifier_max_batch=str(_max_batch(clf, serving)),
                  detector=serving.detector, max_detect_side=str(serving.max_detect_side),
                  max_pixels=str(serving.max_pixels))
    config = {
        "name": name,
        "backend": "python",
        "max_batch_size": 0,  # one frame per request; its faces are the classifier's batch
        "input": [{"name": FACES_INPUT, "data_type": Enum("TYPE_UINT8"), "dims": [-1]}],  # JPEG/PNG bytes
        "output": outputs,
        "instance_group": [{"kind": Enum("KIND_CPU"), "count": serving.instances}],  # detection runs on the CPU
        "parameters": parameters(params),
    }
    return render(config)


def _max_batch(clf: Classifier, serving: Serving) -> int:
    return min(serving.max_batch, clf.fixed_batch) if clf.fixed_batch else serving.max_batch


def _batching(max_batch: int, delay_us: int) -> dict:
    preferred = [b for b in (4, 8, 16, 32) if b <= max_batch] or None
    return {"preferred_batch_size": preferred, "max_queue_delay_microseconds": int(delay_us)}


def _instances(serving: Serving, gpu_only: bool) -> dict:
    kind = "KIND_GPU" if serving.device == "gpu" or gpu_only else "KIND_CPU"
    return {"kind": Enum(kind), "count": serving.instances}


def _accelerator(serving: Serving) -> dict:
    if serving.accelerator == "tensorrt":
        return {"gpu_execution_accelerator": [{"name": "tensorrt", "parameters": [
            {"key": "precision_mode", "value": serving.precision.upper()},
            {"key": "max_workspace_size_bytes", "value": str(1 << 30)}]}]}
    return {"cpu_execution_accelerator": [{"name": "openvino"}]}
