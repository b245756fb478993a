#!/usr/bin/env bash
# Reproduce docs/benchmarks.md on this machine: the default model and POSTER V2, FP32 and INT8, on
# PyTorch (eager reference), ONNX Runtime and OpenVINO, plus the live pipeline on the sample video.
#
#   bash bench/reproduce_cpu.sh            # writes exports under out/bench and results under docs/bench
#
# POSTER V2 has no downloadable weights here, so it runs with the authors' checkpoint layout filled by
# ../shared/reference/fill.py: its latency and INT8 agreement are real, its accuracy is not reported.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-out/bench}
DOCS=${DOCS:-docs/bench}
SHARED=${SHARED:-../shared}
THREADS=${THREADS:-2}
mkdir -p "$OUT" "$DOCS"

# 1. Default model: FP32 + INT8 for every target, calibrated on FER2013 train, measured on public_test.
"$BIN/fer-edge" export --method mini_xception --int8 --calib-data fer2013:train --calib-size 300 \
    --val-data fer2013:public_test --output "$OUT/default"

# 2. POSTER V2 in the authors' layout (fill.py values), imported once for the PyTorch reference.
"$BIN/python" tools/reference_checkpoint.py poster_v2 "$OUT/poster_v2_filled.pth"
"$BIN/fer-edge" import --method poster_v2 --checkpoint "$OUT/poster_v2_filled.pth" --output "$OUT/poster_v2.safetensors"
"$BIN/fer-edge" export --method poster_v2 --weights "$OUT/poster_v2_filled.pth" --int8 \
    --calib-data "$SHARED/data/faces" --calib-size 16 --output "$OUT/poster_v2"

# 3. One table per model, every backend and precision in the same run.
D="$OUT/default"
"$BIN/fer-edge" bench --reference --reference-weights src/fer_edge/assets/mini_xception.safetensors \
    "$D/mini_xception.onnx@onnxruntime" "$D/mini_xception_int8_onnxruntime.onnx@onnxruntime" \
    "$D/mini_xception_fp32.xml@openvino" "$D/mini_xception_int8_openvino.xml@openvino" \
    --data fer2013:public_test --batch 1,8,32 --runs 100 --warmup 10 --threads "$THREADS" \
    --json "$DOCS/cpu_default.json" --markdown "$DOCS/cpu_default.md" --plots "$DOCS/cpu_default"
P="$OUT/poster_v2"
"$BIN/fer-edge" bench --reference --reference-weights "$OUT/poster_v2.safetensors" \
    "$P/poster_v2.onnx@onnxruntime" "$P/poster_v2_int8_onnxruntime.onnx@onnxruntime" \
    "$P/poster_v2_fp32.xml@openvino" "$P/poster_v2_int8_openvino.xml@openvino" \
    --data fer2013:public_test --limit 64 --no-accuracy --batch 1,8 --runs 20 --warmup 3 --threads "$THREADS" \
    --json "$DOCS/cpu_poster_v2.json" --markdown "$DOCS/cpu_poster_v2.md" --plots "$DOCS/cpu_poster_v2"

# 4. The live pipeline (BlazeFace + alignment + default model + tracking/smoothing) on the sample video.
"$BIN/fer-edge" bench --pipeline --source "$SHARED/data/videos/facenet_pytorch_video.mp4" \
    --json "$DOCS/cpu_pipeline.json" --markdown "$DOCS/cpu_pipeline.md"
