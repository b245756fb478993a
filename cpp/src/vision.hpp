// Faces in frames: BlazeFace detection, alignment, IoU tracking and smoothing, mirroring
// src/fer_edge/vision/{detectors,align,tracking,smoothing}.py step by step (same float32/float64
// steps, same orders), so the C++ pipeline gives the Python pipeline's boxes and tracks.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "backend.hpp"

namespace fei {

struct Detection {
    std::array<float, 4> box;         // x1, y1, x2, y2, frame pixels
    std::array<float, 12> keypoints;  // 6 x (x, y)
    float score;
};

struct BlazeFaceVariant {
    std::string name, file;
    int input;
    std::vector<std::pair<int, int>> grids;  // (cells per side, anchors per cell)
    std::string regressors, classificators;
    int tile_px;  // 0: never tile
};

const BlazeFaceVariant& blazeface_variant(const std::string& name);  // "blazeface" or "blazeface_full"

struct DetectorSettings {
    std::string variant = "blazeface";
    float score_threshold = 0.5f;
    double iou_threshold = 0.3;
    bool weighted = true;
    int max_faces = -1;   // -1: all
    int tile_rows = -1;   // -1: auto
};

class BlazeFace {
public:
    BlazeFace(std::unique_ptr<Backend> engine, DetectorSettings settings);
    // Faces in a BGR frame, best first; the frame is shrunk to `max_side` for detection (0: never).
    std::vector<Detection> operator()(const cv::Mat& frame, int max_side) const;
    std::vector<Detection> detect(const cv::Mat& frame) const;
    std::vector<std::array<int, 3>> tiles(int h, int w) const;  // (x, y, side)

private:
    std::unique_ptr<Backend> engine_;
    DetectorSettings settings_;
    const BlazeFaceVariant& variant_;
    std::vector<float> anchors_;  // (N, 2)
};

// Pairwise IoU (float64) of x1y1x2y2 boxes.
double iou(const std::array<float, 4>& a, const std::array<float, 4>& b);

// Hard or MediaPipe-style weighted NMS (vision.detectors.non_max_suppression).
std::vector<Detection> non_max_suppression(std::vector<Detection> faces, double iou_threshold, bool weighted);

// Crop a face onto the template at (height, width): vision.align.align_face.
cv::Mat align_face(const cv::Mat& frame, const std::array<float, 12>& keypoints, int height, int width,
                   const std::string& face_template, double face_scale);

class Smoother {
public:
    Smoother(double ema, double hysteresis) : ema_(ema), hysteresis_(hysteresis) {}
    // Add this frame's probabilities; returns the stable label, smoothed probabilities in `probs()`.
    int update(const float* p, size_t n);
    const std::vector<float>& probs() const { return probs_; }

private:
    double ema_, hysteresis_;
    std::vector<float> probs_;
    int label_ = -1;
};

struct Track {
    int64_t id;
    std::array<float, 4> box;
    int hits = 1, missed = 0, age = 1;
    std::unique_ptr<Smoother> smoother;
    // video models: the latest clip's results
    bool has_clip = false;
    std::vector<float> clip_probs;
    float clip_uncertainty = 0.f;
    bool clip_has_uncertainty = false;
    int clip_label = 0;
};

class IoUTracker {
public:
    IoUTracker(double iou_threshold, int max_missed) : iou_threshold_(iou_threshold), max_missed_(max_missed) {}
    void reset() { tracks_.clear(); next_id_ = 1; }
    // The track of each box, in box order (pointers valid until the next update/reset).
    std::vector<std::shared_ptr<Track>> update(const std::vector<std::array<float, 4>>& boxes);
    const std::vector<std::shared_ptr<Track>>& tracks() const { return tracks_; }

private:
    double iou_threshold_;
    int max_missed_;
    std::vector<std::shared_ptr<Track>> tracks_;
    int64_t next_id_ = 1;
};

}  // namespace fei
