#include "model.hpp"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "error.hpp"
#include "numeric.hpp"

namespace fei {
namespace {

int interpolation(const std::string& resize) {
    if (resize == "nearest") return cv::INTER_NEAREST;
    if (resize == "bicubic") return cv::INTER_CUBIC;
    if (resize == "area") return cv::INTER_AREA;
    return cv::INTER_LINEAR;
}

// As preprocess._to_color: the crop in the model's colour order.
cv::Mat to_color(const cv::Mat& img, const std::string& color) {
    cv::Mat out;
    if (img.channels() == 1) {
        if (color == "GRAY") return img;
        cv::cvtColor(img, out, color == "BGR" ? cv::COLOR_GRAY2BGR : cv::COLOR_GRAY2RGB);
        return out;
    }
    if (color == "GRAY") cv::cvtColor(img, out, cv::COLOR_BGR2GRAY);
    else if (color == "RGB") cv::cvtColor(img, out, cv::COLOR_BGR2RGB);
    else return img;
    return out;
}

std::string file_name(const std::string& path) { return path.substr(path.find_last_of('/') + 1); }
std::string folder(const std::string& path) {
    size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

void preprocess(const std::vector<cv::Mat>& crops, const InputSpec& spec, std::vector<float>& out) {
    const int c = spec.channels(), h = spec.height, w = spec.width;
    const float scale = static_cast<float>(spec.scale);
    size_t base = out.size();
    out.resize(base + crops.size() * static_cast<size_t>(c) * h * w);
    float* dst = out.data() + base;
    for (const cv::Mat& crop : crops) {
        cv::Mat img = to_color(crop, spec.color);
        if (img.rows != h || img.cols != w) {
            cv::Mat resized;
            cv::resize(img, resized, cv::Size(w, h), 0, 0, interpolation(spec.resize));
            img = resized;
        }
        for (int ch = 0; ch < c; ++ch) {
            const float mean = spec.mean[ch], std = spec.std[ch];
            for (int y = 0; y < h; ++y) {
                const uint8_t* row = img.ptr<uint8_t>(y);
                for (int x = 0; x < w; ++x) *dst++ = (static_cast<float>(row[x * c + ch]) * scale - mean) / std;
            }
        }
    }
}

Graph::Graph(std::unique_ptr<Backend> backend, Metadata meta, std::string path)
    : backend_(std::move(backend)), meta_(std::move(meta)), path_(std::move(path)) {
    const auto& ins = backend_->inputs();
    if (ins.empty()) fail(FE_ERR_BAD_ARTIFACT, file_name(path_) + " has no inputs; re-export it");
    input_name_ = ins[0].name;
    for (const auto& t : ins)
        if (t.name == meta_.input.name) input_name_ = t.name;
    for (const auto& t : ins)
        if (t.name == input_name_ && !t.shape.empty() && t.shape[0] > 0) static_batch_ = t.shape[0];
    // the fit of metadata and graph, as metadata.check_against_graph
    const auto& outs = backend_->outputs();
    if (meta_.output.kind != "features" && !outs.empty()) {
        const TensorInfo* o = &outs[0];
        for (const auto& t : outs)
            if (t.name == meta_.output.name) o = &t;
        if (!o->shape.empty() && o->shape.back() > 0 && o->shape.back() != static_cast<int64_t>(meta_.labels.size()))
            fail(FE_ERR_BAD_ARTIFACT, file_name(path_) + ": output '" + o->name + "' has " + std::to_string(o->shape.back()) +
                                          " classes but the metadata names " + std::to_string(meta_.labels.size()) +
                                          " labels; re-export it");
    }
    if (meta_.graph != "temporal_head") {
        for (const auto& t : ins) {
            if (t.name != input_name_ || t.shape.empty()) continue;
            std::vector<int64_t> want{meta_.input.channels(), meta_.input.height, meta_.input.width};
            if (meta_.input.layout == "NTCHW") want.insert(want.begin(), meta_.input.frames);
            bool bad = t.shape.size() != want.size() + 1;
            for (size_t i = 0; !bad && i < want.size(); ++i) bad = t.shape[i + 1] > 0 && t.shape[i + 1] != want[i];
            if (bad)
                fail(FE_ERR_BAD_ARTIFACT, file_name(path_) + ": input '" + t.name + "' does not have the shape the metadata "
                                              "describes (" + meta_.input.color + ", " + std::to_string(meta_.input.height) +
                                              "x" + std::to_string(meta_.input.width) + "); re-export it");
        }
    }
}

std::map<std::string, Tensor> Graph::run(const float* data, const std::vector<int64_t>& shape) {
    const int64_t n = shape.empty() ? 0 : shape[0];
    // a fixed-batch graph (e.g. a static TensorRT engine) runs in chunks of its batch, the last zero-padded;
    // a dynamic one with a maximum batch (a TensorRT profile) in chunks of at most that
    const int64_t chunk_rows = static_batch_ > 0 ? static_batch_ : backend_->max_batch();
    if (chunk_rows <= 0 || n == chunk_rows || (static_batch_ <= 0 && n <= chunk_rows))
        return backend_->run({{input_name_, TensorView{shape, data}}});
    const int64_t row = n ? element_count(shape) / n : 0;
    std::vector<int64_t> chunk_shape = shape;
    std::vector<float> chunk;
    std::map<std::string, Tensor> merged;
    for (int64_t start = 0; start < n; start += chunk_rows) {
        const int64_t take = std::min(chunk_rows, n - start);
        chunk_shape[0] = static_batch_ > 0 ? static_batch_ : take;
        chunk.assign(static_cast<size_t>(chunk_shape[0] * row), 0.f);
        std::copy(data + start * row, data + (start + take) * row, chunk.begin());
        auto outs = backend_->run({{input_name_, TensorView{chunk_shape, chunk.data()}}});
        for (auto& kv : outs) {
            Tensor& dst = merged[kv.first];
            const int64_t per = kv.second.row_size();
            if (dst.shape.empty()) {
                dst.shape = kv.second.shape;
                dst.shape[0] = 0;
            }
            dst.shape[0] += take;
            dst.data.insert(dst.data.end(), kv.second.data.begin(), kv.second.data.begin() + take * per);
        }
    }
    return merged;
}

const Tensor& Graph::primary(const std::map<std::string, Tensor>& outputs) const {
    auto it = outputs.find(meta_.output.name);
    if (it != outputs.end()) return it->second;
    // the engine's first output (its declared order), as Python's next(iter(outputs))
    for (const auto& t : backend_->outputs()) {
        auto found = outputs.find(t.name);
        if (found != outputs.end()) return found->second;
    }
    if (outputs.empty()) fail(FE_ERR_BACKEND, file_name(path_) + " gave no outputs");
    return outputs.begin()->second;
}

Prediction Graph::postprocess(const std::map<std::string, Tensor>& outputs) const {
    const Tensor& out = primary(outputs);
    const int64_t classes = static_cast<int64_t>(meta_.labels.size());
    if (out.shape.size() != 2)
        fail(FE_ERR_BACKEND, "the model's primary output should be (batch, classes), got " + std::to_string(out.shape.size()) +
                                 " dimensions");
    if (out.shape[1] != classes)
        fail(FE_ERR_BAD_ARTIFACT, "the model outputs " + std::to_string(out.shape[1]) + " classes but its metadata names " +
                                      std::to_string(classes) + " labels");
    Prediction p;
    p.count = out.shape[0];
    p.classes = classes;
    p.raw = out.data;
    p.probs.resize(out.data.size());
    const std::string& kind = meta_.output.kind;
    for (int64_t i = 0; i < p.count; ++i) {
        const float* x = out.data.data() + i * classes;
        float* y = p.probs.data() + i * classes;
        if (kind == "logits" || kind == "scaled_cosine") softmax_row(x, y, classes);
        else if (kind == "probabilities") std::copy(x, x + classes, y);
        else if (kind == "evidence") p.uncertainty.push_back(evidential_row(x, y, classes));
        else fail(FE_ERR_UNSUPPORTED, "output kind '" + kind + "' is not a classifier output");
    }
    auto unc = outputs.find("uncertainty");
    if (p.uncertainty.empty() && unc != outputs.end() && unc->first != meta_.output.name &&
        static_cast<int64_t>(unc->second.data.size()) == p.count)
        p.uncertainty = unc->second.data;
    for (int64_t i = 0; i < p.count; ++i) {
        const float* y = p.probs.data() + i * classes;
        p.labels.push_back(static_cast<int32_t>(std::max_element(y, y + classes) - y));
    }
    return p;
}

std::shared_ptr<Model> Model::open(const std::string& path, const std::string& backend, const std::string& device,
                                   const Options& options) {
    auto load = [&](const std::string& p) {
        auto engine = open_backend(p, backend, device, options);
        std::string text = engine->metadata_json();
        if (text.empty()) text = read_sidecar(p);
        if (text.empty())
            fail(FE_ERR_BAD_ARTIFACT, file_name(p) + " has no fer-edge metadata (ONNX metadata_props / OpenVINO rt_info "
                                          "\"fer_edge\", or a " + file_name(p) + ".json sidecar); export it with `fer-edge export`");
        Metadata meta = parse_metadata(text, file_name(p));
        return std::make_unique<Graph>(std::move(engine), std::move(meta), p);
    };
    auto model = std::make_shared<Model>();
    model->path_ = path;
    model->backend_ = backend;
    model->device_ = device;
    model->options_ = options;
    model->main_ = load(path);
    const Metadata& m = model->main_->meta();
    if (m.graph == "frame_encoder" || m.graph == "temporal_head") {
        bool is_encoder = m.graph == "frame_encoder";
        const std::string& partner = is_encoder ? m.temporal_head_file : m.frame_encoder_file;
        const char* other = is_encoder ? "temporal_head" : "frame_encoder";
        if (partner.empty())
            fail(FE_ERR_UNSUPPORTED, file_name(path) + " is a " + m.graph + " graph whose metadata names no " + other +
                                         " partner; open the graph pair of the export folder");
        std::string where = folder(path) + "/" + partner;
        std::unique_ptr<Graph> second;
        try {
            second = load(where);
        } catch (const Error& e) {
            if (e.status() != FE_ERR_NOT_FOUND) throw;
            fail(FE_ERR_NOT_FOUND, file_name(path) + " needs its " + other + " graph " + partner +
                                       ", which is not beside it; copy the whole export folder");
        }
        if (second->meta().graph != other)
            fail(FE_ERR_BAD_ARTIFACT, file_name(path) + " names a '" + second->meta().graph + "' graph as its partner; re-export the pair");
        if (second->meta().method != m.method)
            fail(FE_ERR_BAD_ARTIFACT, "the encoder and head come from different methods (" + m.method + ", " +
                                          second->meta().method + "); re-export the pair");
        if (is_encoder) model->head_ = std::move(second);
        else {
            model->head_ = std::move(model->main_);
            model->main_ = std::move(second);
        }
        if (model->head_->meta().input.frames <= 0)
            fail(FE_ERR_BAD_ARTIFACT, "the temporal head's metadata gives no clip length (input.frames); re-export it");
    }
    return model;
}

std::shared_ptr<Model> Model::split_pair() const {
    const Metadata& m = main_->meta();
    if (m.frame_encoder_file.empty())
        fail(FE_ERR_UNSUPPORTED, m.method + " is a clip graph (clips of " + std::to_string(m.input.frames) +
                                     " frames) that names no frame_encoder graph; the live pipeline runs video models as "
                                     "their split pair so that each frame is encoded once: re-export with the split graphs");
    return open(folder(path_) + "/" + m.frame_encoder_file, backend_, device_, options_);
}

Prediction Model::predict(const std::vector<cv::Mat>& crops) {
    if (is_video())
        fail(FE_ERR_UNSUPPORTED, "this is a video model: pass clips (fe_model_predict_clips) or run the pipeline");
    const InputSpec& spec = main_->meta().input;
    if (crops.empty()) {
        Prediction p;
        p.classes = static_cast<int64_t>(labels().size());
        return p;
    }
    std::vector<float> x;
    preprocess(crops, spec, x);
    auto outs = main_->run(x.data(), {static_cast<int64_t>(crops.size()), spec.channels(), spec.height, spec.width});
    return main_->postprocess(outs);
}

std::vector<float> Model::encode(const std::vector<cv::Mat>& crops, int64_t& dim) {
    const InputSpec& spec = main_->meta().input;
    std::vector<float> x;
    preprocess(crops, spec, x);
    const int64_t n = static_cast<int64_t>(crops.size());
    auto outs = main_->run(x.data(), {n, spec.channels(), spec.height, spec.width});
    const Tensor& f = main_->primary(outs);
    if (n == 0 || static_cast<int64_t>(f.data.size()) % n != 0) fail(FE_ERR_BACKEND, "the frame encoder gave no features");
    dim = static_cast<int64_t>(f.data.size()) / n;
    return f.data;
}

Prediction Model::head(const std::vector<float>& clip, int64_t frames, int64_t dim) {
    auto outs = head_->run(clip.data(), {1, frames, dim});
    return head_->postprocess(outs);
}

Prediction Model::predict_clips(const std::vector<cv::Mat>& frames, size_t num_clips) {
    if (!is_video()) fail(FE_ERR_UNSUPPORTED, "this is an image model: pass face crops (fe_model_predict), not clips");
    const int64_t t = clip_length();
    if (frames.size() != num_clips * static_cast<size_t>(t))
        fail(FE_ERR_INVALID_ARGUMENT, "a clip must have " + std::to_string(t) + " frames for this model: pass " +
                                          std::to_string(num_clips * t) + " crops for " + std::to_string(num_clips) + " clips");
    if (num_clips == 0) {
        Prediction p;
        p.classes = static_cast<int64_t>(labels().size());
        return p;
    }
    const int64_t n = static_cast<int64_t>(num_clips);
    if (!head_) {  // one monolithic clip graph (N, T, C, H, W)
        const InputSpec& spec = main_->meta().input;
        std::vector<float> x;
        preprocess(frames, spec, x);
        return main_->postprocess(main_->run(x.data(), {n, t, spec.channels(), spec.height, spec.width}));
    }
    int64_t dim = 0;
    std::vector<float> feats;
    const size_t batch = 32;  // encoder batches, as runtimes/video.py ENCODE_BATCH
    for (size_t i = 0; i < frames.size(); i += batch) {
        std::vector<cv::Mat> part(frames.begin() + i, frames.begin() + std::min(frames.size(), i + batch));
        auto f = encode(part, dim);
        feats.insert(feats.end(), f.begin(), f.end());
    }
    auto outs = head_->run(feats.data(), {n, t, dim});
    return head_->postprocess(outs);
}

}  // namespace fei
