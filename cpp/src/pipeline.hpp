// The live pipeline: detect -> align -> classify -> track -> smooth, one BGR frame at a time
// (src/fer_edge/pipeline.py), with the per-track clip buffers of runtimes/clip_stream.py for
// split video models.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fer_edge/fer_edge.h"
#include "model.hpp"
#include "vision.hpp"

namespace fei {

// Clip indices a video model's metadata asks for out of `buffered` frames (clip_stream.sample_indices).
std::vector<int> sample_indices(const std::string& sampling, int buffered, int frames);

class ClipStream {
public:
    ClipStream(std::shared_ptr<Model> model, int stride);
    // The faces of one frame (distinct tracks), encoded in one batch; a prediction where one is due.
    std::vector<std::unique_ptr<Prediction>> push_many(const std::vector<int64_t>& ids, const std::vector<cv::Mat>& crops);
    int buffered(int64_t id) const;
    void drop_except(const std::set<int64_t>& alive);
    void reset() { tracks_.clear(); }

private:
    struct Buffer {
        std::deque<std::vector<float>> features;
        int64_t seen = 0, last_emit = -1;
    };
    std::shared_ptr<Model> model_;
    int stride_, frames_;
    std::map<int64_t, Buffer> tracks_;
};

struct PipelineSettings {
    double ema = 0.6, hysteresis = 0.1, iou_threshold = 0.3;
    int max_missed = 10, min_face = 20, stride = 4, max_detect_side = 2048;
};

class Pipeline {
public:
    Pipeline(std::shared_ptr<Model> model, const Options& options);
    size_t process(const cv::Mat& frame);
    const fe_face* face(size_t i) const { return i < faces_.size() ? &faces_[i] : nullptr; }
    void reset();
    double stage_seconds(const std::string& stage) const;
    uint64_t frames() const { return frames_; }

private:
    void publish_image(const std::vector<Detection>& faces, const std::vector<std::shared_ptr<Track>>& tracks,
                       const Prediction& pred);
    void publish_video(const std::vector<Detection>& faces, const std::vector<std::shared_ptr<Track>>& tracks,
                       std::vector<std::unique_ptr<Prediction>>& preds);
    fe_face& add_face(const Detection& d, const Track& t);

    std::shared_ptr<Model> model_;
    PipelineSettings settings_;
    std::unique_ptr<BlazeFace> detector_;
    IoUTracker tracker_;
    std::unique_ptr<ClipStream> stream_;
    // results of the last frame (fe_face points into these)
    std::vector<fe_face> faces_;
    std::deque<std::vector<float>> floats_;
    std::deque<std::string> names_;
    double seconds_[4] = {0, 0, 0, 0};
    uint64_t frames_ = 0;
};

// Where the bundled BlazeFace models are looked for: $FER_EDGE_ASSETS, the install's share/fer_edge,
// the source tree's src/fer_edge/assets.
std::string find_detector_model(const std::string& file);

}  // namespace fei
