// A loaded artifact with its metadata-driven pre- and postprocessing: the same predict on every
// backend, matching src/fer_edge/preprocess.py, postprocess.py and runtimes/model.py + video.py.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "backend.hpp"
#include "metadata.hpp"

namespace fei {

struct Prediction {
    int64_t count = 0, classes = 0;
    std::vector<float> probs, raw;  // count x classes
    std::vector<int32_t> labels;    // argmax per row
    std::vector<float> uncertainty; // empty unless the method gives one
};

// One graph: an engine and the metadata that describes it.
class Graph {
public:
    Graph(std::unique_ptr<Backend> backend, Metadata meta, std::string path);
    const Metadata& meta() const { return meta_; }
    Backend& backend() { return *backend_; }
    const std::string& path() const { return path_; }
    // Run on a (N, ...) float tensor for the metadata's input; static-batch graphs run in padded chunks.
    std::map<std::string, Tensor> run(const float* data, const std::vector<int64_t>& shape);
    // The primary output (metadata output.name, else the first) of `outputs`.
    const Tensor& primary(const std::map<std::string, Tensor>& outputs) const;
    // Raw outputs -> probabilities (by the output kind), labels, uncertainty.
    Prediction postprocess(const std::map<std::string, Tensor>& outputs) const;

private:
    std::unique_ptr<Backend> backend_;
    Metadata meta_;
    std::string path_, input_name_;
    int64_t static_batch_ = 0;
};

// BGR (CV_8UC3) or gray (CV_8UC1) crops -> (N, C, H, W) floats appended to `out`.
void preprocess(const std::vector<cv::Mat>& crops, const InputSpec& spec, std::vector<float>& out);

class Model {
public:
    // Open an artifact (and, for a frame_encoder/temporal_head graph, its partner beside it).
    static std::shared_ptr<Model> open(const std::string& path, const std::string& backend, const std::string& device,
                                       const Options& options);

    const Metadata& metadata() const { return head_ ? head_->meta() : main_->meta(); }
    // The metadata that says how a face crop becomes input (the encoder's for video models).
    const InputSpec& crop_spec() const { return main_->meta().input; }
    bool is_split_video() const { return head_ != nullptr; }
    bool is_video() const { return head_ != nullptr || main_->meta().input.layout == "NTCHW"; }
    int clip_length() const { return is_video() ? metadata().input.frames : 0; }
    std::string backend_name() const { return main_->backend().name(); }
    const std::vector<std::string>& labels() const { return metadata().labels; }

    Prediction predict(const std::vector<cv::Mat>& crops);
    Prediction predict_clips(const std::vector<cv::Mat>& frames, size_t num_clips);
    // Split video models: crops -> features (N x D, row-major); `dim` receives D.
    std::vector<float> encode(const std::vector<cv::Mat>& crops, int64_t& dim);
    // Split video models: one clip of T features (T x D) -> a one-row Prediction.
    Prediction head(const std::vector<float>& clip, int64_t frames, int64_t dim);
    // A monolithic clip graph's split pair (frame encoder + head), opened from the files its metadata names.
    std::shared_ptr<Model> split_pair() const;

private:
    std::unique_ptr<Graph> main_, head_;
    std::string path_, backend_, device_;
    Options options_;
};

}  // namespace fei
