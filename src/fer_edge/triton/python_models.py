"""The Triton python-backend models of a fer-edge repository (their model.py files import these).

They run inside Triton's python-backend stub, where ``triton_python_backend_utils`` exists and
fer-edge must be installed. :class:`FacesModel` is the face pipeline: it runs the same
:class:`fer_edge.Pipeline` as ``fer-edge run`` on each frame, its classifier being a
:class:`BLSBackend` that sends the faces to the repository's classifier model; so one request with a
frame returns the faces, and concurrent frames' faces meet in the classifier's dynamic batcher.
:class:`ClassifierModel` serves an artifact with fer-edge's own runtime (the route for a Triton
build that has only the python backend).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import FerEdgeError
from ..metadata import ArtifactMetadata
from ..runtimes.base import Backend, BackendInfo, TensorInfo


def _utils():
    import triton_python_backend_utils as pb_utils  # provided by Triton's python backend

    return pb_utils


def _parameters(args: dict) -> tuple[dict, dict[str, str]]:
    config = json.loads(args["model_config"])
    return config, {k: v["string_value"] for k, v in config.get("parameters", {}).items()}


class ClassifierModel:
    """A fer-edge artifact in the version folder, run by fer_edge.load; Triton's batch in one call."""

    def initialize(self, args: dict) -> None:
        from .. import load

        self.pb = _utils()
        config, params = _parameters(args)
        folder = Path(args["model_repository"]) / args["model_version"]
        self.model = load(folder / params["artifact"], device=params.get("device", "cpu"), pair=False)
        self.inputs = [i["name"] for i in config["input"]]
        self.outputs = [o["name"] for o in config["output"]]

    def execute(self, requests):
        pb = self.pb
        feeds = [{n: pb.get_input_tensor_by_name(r, n).as_numpy() for n in self.inputs} for r in requests]
        rows = [len(f[self.inputs[0]]) for f in feeds]
        merged = {n: np.concatenate([f[n] for f in feeds]) for n in self.inputs}
        outputs = self.model.run(merged)  # the requests Triton batched: one engine call
        responses, start = [], 0
        for n in rows:
            tensors = [pb.Tensor(name, np.ascontiguousarray(outputs[name][start:start + n], np.float32))
                       for name in self.outputs]
            responses.append(pb.InferenceResponse(output_tensors=tensors))
            start += n
        return responses

    def finalize(self) -> None:
        self.model = None


class BLSBackend(Backend):
    """A backend whose engine is another model of the same Triton server, reached by BLS requests."""

    name = "triton"

    def __init__(self, pb_utils, model_name: str, metadata: ArtifactMetadata, max_batch: int):
        super().__init__(Path(model_name))
        self.pb, self.model_name, self.meta, self.max_batch = pb_utils, model_name, metadata, int(max_batch)
        self._outputs = [metadata.output.name, *metadata.output.extra]

    @classmethod
    def available_devices(cls) -> dict[str, str]:
        return {"triton": "a model of the same Triton server"}

    @property
    def inputs(self) -> list[TensorInfo]:
        return [TensorInfo(self.meta.input.name, self.meta.input.shape(), "float32")]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [TensorInfo(self.meta.output.name, ["batch", len(self.meta.labels)], "float32")]

    @property
    def device(self) -> str:
        return "triton"

    def read_metadata(self) -> ArtifactMetadata:
        return self.meta

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, self.device, "bls", details={"model": self.model_name})

    def close(self) -> None:
        """Nothing to release: the classifier model belongs to the server."""

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """At most max_batch rows per request (the classifier's limit); results in row order."""
        rows = len(next(iter(feeds.values())))
        parts = [self._request({k: v[i:i + self.max_batch] for k, v in feeds.items()})
                 for i in range(0, rows, self.max_batch)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _request(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pb = self.pb
        request = pb.InferenceRequest(model_name=self.model_name, requested_output_names=self._outputs,
                                      inputs=[pb.Tensor(k, np.ascontiguousarray(v, np.float32)) for k, v in feeds.items()])
        response = request.exec()
        if response.has_error():
            raise FerEdgeError(f"the classifier model {self.model_name} failed: {response.error().message()}")
        return {n: pb.get_output_tensor_by_name(response, n).as_numpy() for n in self._outputs}


class FacesModel:
    """One JPEG/PNG frame per request -> BOXES, SCORES, KEYPOINTS, PROBS, LABELS of its faces."""

    def initialize(self, args: dict) -> None:
        from ..pipeline import Pipeline
        from ..runtimes import Model

        self.pb = _utils()
        _, params = _parameters(args)
        meta = ArtifactMetadata.from_json(params["fer_edge_metadata"], source="config.pbtxt parameters")
        backend = BLSBackend(self.pb, params["classifier"], meta, int(params["classifier_max_batch"]))
        self.max_pixels = int(params["max_pixels"])
        self.labels = list(meta.labels)
        # each frame is independent (tracks reset): smoothing has no past, so probabilities are the model's
        self.pipe = Pipeline(model=Model(backend, meta), detector=params["detector"],
                             max_detect_side=int(params["max_detect_side"]))

    def execute(self, requests):
        return [self._one(r) for r in requests]

    def _one(self, request):
        from ..serve.images import decode_image

        pb = self.pb
        try:
            data = pb.get_input_tensor_by_name(request, "IMAGE").as_numpy().astype(np.uint8, copy=False).tobytes()
            frame = decode_image(data, self.max_pixels)
            self.pipe.reset_tracks()
            faces = self.pipe(frame)
        except FerEdgeError as exc:
            return pb.InferenceResponse(error=pb.TritonError(str(exc), pb.TritonError.INVALID_ARG))  # a 400, not a 500
        n, c = len(faces), len(self.labels)
        tensors = {
            "BOXES": np.array([f.box for f in faces], np.float32).reshape(n, 4),
            "SCORES": np.array([f.score for f in faces], np.float32).reshape(n),
            "KEYPOINTS": np.array([f.keypoints for f in faces], np.float32).reshape(n, 6, 2),
            "PROBS": np.array([f.probs for f in faces], np.float32).reshape(n, c),
            "LABELS": np.array([f.label.encode() for f in faces], dtype=np.object_).reshape(n),
        }
        return pb.InferenceResponse(output_tensors=[pb.Tensor(k, v) for k, v in tensors.items()])

    def finalize(self) -> None:
        self.pipe = None
