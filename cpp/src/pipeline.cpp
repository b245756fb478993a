#include "pipeline.hpp"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sys/stat.h>

#include "error.hpp"

namespace fei {
namespace {

const std::set<std::string> kPipelineKeys{"ema", "hysteresis", "iou_threshold", "max_missed", "min_face", "stride",
                                          "max_detect_side", "detector", "detector_model", "detector_backend",
                                          "detector_device", "score_threshold", "nms", "nms_iou", "max_faces", "tile_rows"};

bool is_file(const std::string& p) {
    struct stat st {};
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string find_detector_model(const std::string& file) {
    std::vector<std::string> dirs;
    if (const char* env = std::getenv("FER_EDGE_ASSETS")) dirs.push_back(env);
#ifdef FE_INSTALL_ASSET_DIR
    dirs.push_back(FE_INSTALL_ASSET_DIR);
#endif
#ifdef FE_SOURCE_ASSET_DIR
    dirs.push_back(FE_SOURCE_ASSET_DIR);
#endif
    std::string tried;
    for (const auto& d : dirs) {
        if (is_file(d + "/" + file)) return d + "/" + file;
        tried += (tried.empty() ? "" : ", ") + d;
    }
    fail(FE_ERR_NOT_FOUND, "the face detector model " + file + " was not found (looked in: " + tried +
                               "); set FER_EDGE_ASSETS to its folder or the option detector_model to the file");
}

std::vector<int> sample_indices(const std::string& sampling, int buffered, int frames) {
    std::vector<int> out;
    if (buffered <= 0) fail(FE_ERR_INTERNAL, "a clip needs at least one frame");
    if (sampling.empty() || sampling.rfind("tsn-centre", 0) == 0) {
        if (buffered > frames) {
            const double tick = static_cast<double>(buffered) / frames;
            for (int i = 0; i < frames; ++i) out.push_back(static_cast<int>(tick / 2.0 + tick * i));
        } else {
            for (int i = 0; i < frames; ++i) out.push_back(std::min(i, buffered - 1));
        }
        return out;
    }
    if (sampling.rfind("uniform", 0) == 0) {  // np.linspace(0, n - 1, frames).round()
        const double stop = buffered - 1;
        const double step = frames > 1 ? stop / (frames - 1) : 0.0;
        for (int i = 0; i < frames; ++i) {
            double v = (frames > 1 && i == frames - 1) ? stop : i * step;
            out.push_back(static_cast<int>(std::nearbyint(v)));
        }
        return out;
    }
    fail(FE_ERR_UNSUPPORTED, "clip sampling '" + sampling + "' is not supported by the stream runner; re-export the model");
}

ClipStream::ClipStream(std::shared_ptr<Model> model, int stride)
    : model_(std::move(model)), stride_(stride), frames_(model_->clip_length()) {}

std::vector<std::unique_ptr<Prediction>> ClipStream::push_many(const std::vector<int64_t>& ids,
                                                               const std::vector<cv::Mat>& crops) {
    std::vector<std::unique_ptr<Prediction>> out(ids.size());
    if (ids.empty()) return out;
    int64_t dim = 0;
    std::vector<float> feats = model_->encode(crops, dim);
    const std::string& sampling = model_->metadata().input.sampling;
    for (size_t i = 0; i < ids.size(); ++i) {
        Buffer& b = tracks_[ids[i]];
        b.features.emplace_back(feats.begin() + i * dim, feats.begin() + (i + 1) * dim);
        if (static_cast<int>(b.features.size()) > frames_) b.features.pop_front();  // window = clip length
        b.seen += 1;
        if (static_cast<int>(b.features.size()) < frames_) continue;
        if (b.last_emit >= 0 && b.seen - b.last_emit < stride_) continue;
        b.last_emit = b.seen;
        std::vector<float> clip;
        for (int k : sample_indices(sampling, static_cast<int>(b.features.size()), frames_))
            clip.insert(clip.end(), b.features[k].begin(), b.features[k].end());
        out[i] = std::make_unique<Prediction>(model_->head(clip, frames_, dim));
    }
    return out;
}

int ClipStream::buffered(int64_t id) const {
    auto it = tracks_.find(id);
    return it == tracks_.end() ? 0 : static_cast<int>(it->second.features.size());
}

void ClipStream::drop_except(const std::set<int64_t>& alive) {
    for (auto it = tracks_.begin(); it != tracks_.end();) it = alive.count(it->first) ? std::next(it) : tracks_.erase(it);
}

Pipeline::Pipeline(std::shared_ptr<Model> model, const Options& options)
    : model_(std::move(model)), tracker_(0.3, 10) {
    options.check_known(kPipelineKeys, "a pipeline", {"detector."});
    settings_.ema = options.real("ema", 0.6, 0.0, 0.999999);
    settings_.hysteresis = options.real("hysteresis", 0.1, 0.0, 0.999999);
    settings_.iou_threshold = options.real("iou_threshold", 0.3, 0.0, 1.0);
    settings_.max_missed = static_cast<int>(options.integer("max_missed", 10, 0, 1000000));
    settings_.min_face = static_cast<int>(options.integer("min_face", 20, 0, 100000));
    settings_.stride = static_cast<int>(options.integer("stride", 4, 1, 100000));
    settings_.max_detect_side = static_cast<int>(options.integer("max_detect_side", 2048, 0, 1 << 20));
    if (settings_.max_detect_side != 0 && settings_.max_detect_side < 64)
        fail(FE_ERR_INVALID_ARGUMENT, "option max_detect_side must be a whole number of pixels >= 64 (or 0: no limit)");
    tracker_ = IoUTracker(settings_.iou_threshold, settings_.max_missed);
    if (model_->is_video() && !model_->is_split_video()) model_ = model_->split_pair();  // as pipeline._load_model
    DetectorSettings ds;
    ds.variant = options.text("detector", "blazeface");
    const BlazeFaceVariant& variant = blazeface_variant(ds.variant);
    ds.score_threshold = static_cast<float>(options.real("score_threshold", 0.5, 0.0, 1.0));
    ds.iou_threshold = options.real("nms_iou", 0.3, 0.0, 1.0);
    std::string nms = options.text("nms", "weighted");
    if (nms != "weighted" && nms != "hard") fail(FE_ERR_INVALID_ARGUMENT, "option nms must be 'weighted' or 'hard', got '" + nms + "'");
    ds.weighted = nms == "weighted";
    ds.max_faces = static_cast<int>(options.integer("max_faces", -1, -1, 1000000));
    std::string rows = options.text("tile_rows", "auto");
    ds.tile_rows = rows == "auto" ? -1 : static_cast<int>(options.integer("tile_rows", 0, 0, 64));
    // the detector's engine: OpenVINO, else ONNX Runtime, else TensorRT (which needs an engine file of it)
    const std::string engine_name = options.text(
        "detector_backend", backend_available("openvino") ? "openvino" : backend_available("onnxruntime") ? "onnxruntime" : "tensorrt");
    std::string file = options.text("detector_model", "");
    if (file.empty() && engine_name == "tensorrt")
        fail(FE_ERR_INVALID_ARGUMENT, "the face detector runs on TensorRT in this build: set the option detector_model to a "
                                      "BlazeFace engine built with trtexec on this machine (docs/cpp.md)");
    if (file.empty()) file = find_detector_model(variant.file);
    // the detector's own engine options: "detector.<key>"; OpenVINO in fp32 unless asked otherwise
    Options engine = options.with_prefix("detector.");
    if (engine_name == "openvino" && !engine.has("precision")) engine.set("precision", "f32");
    detector_ = std::make_unique<BlazeFace>(open_backend(file, engine_name, options.text("detector_device", engine_name == "openvino" ? "cpu" : ""), engine), ds);
    if (model_->is_split_video()) stream_ = std::make_unique<ClipStream>(model_, settings_.stride);
}

void Pipeline::reset() {
    tracker_.reset();
    if (stream_) stream_->reset();
    faces_.clear();
    floats_.clear();
    names_.clear();
}

double Pipeline::stage_seconds(const std::string& stage) const {
    static const char* names[4] = {"detect", "align", "classify", "track_smooth"};
    if (stage == "total") return seconds_[0] + seconds_[1] + seconds_[2] + seconds_[3];
    for (int i = 0; i < 4; ++i)
        if (stage == names[i]) return seconds_[i];
    return -1.0;
}

fe_face& Pipeline::add_face(const Detection& d, const Track& t) {
    faces_.emplace_back();
    fe_face& f = faces_.back();
    std::copy(d.box.begin(), d.box.end(), f.box);
    std::copy(d.keypoints.begin(), d.keypoints.end(), f.keypoints);
    f.score = d.score;
    f.track_id = t.id;
    f.label = -1;
    f.raw_label = -1;
    f.num_classes = static_cast<int32_t>(model_->labels().size());
    return f;
}

size_t Pipeline::process(const cv::Mat& frame) {
    faces_.clear();
    floats_.clear();
    names_.clear();
    const double t0 = now();
    std::vector<Detection> faces;
    for (const auto& d : (*detector_)(frame, settings_.max_detect_side))
        if (std::min(d.box[2] - d.box[0], d.box[3] - d.box[1]) >= static_cast<float>(settings_.min_face)) faces.push_back(d);
    const double t1 = now();
    const InputSpec& spec = model_->crop_spec();
    std::vector<cv::Mat> crops;
    for (const auto& d : faces)
        crops.push_back(align_face(frame, d.keypoints, spec.height, spec.width, spec.face_template, spec.face_scale));
    const double t2 = now();
    std::vector<std::array<float, 4>> boxes;
    for (const auto& d : faces) boxes.push_back(d.box);
    double classify = 0;
    if (stream_) {
        auto tracks = tracker_.update(boxes);
        std::vector<int64_t> ids;
        for (const auto& t : tracks) ids.push_back(t->id);
        const double c0 = now();
        auto preds = stream_->push_many(ids, crops);
        classify = now() - c0;
        std::set<int64_t> alive;
        for (const auto& t : tracker_.tracks()) alive.insert(t->id);
        stream_->drop_except(alive);
        publish_video(faces, tracks, preds);
    } else {
        Prediction pred;
        if (!crops.empty()) pred = model_->predict(crops);
        classify = now() - t2;
        auto tracks = tracker_.update(boxes);
        publish_image(faces, tracks, pred);
    }
    const double t4 = now();
    seconds_[0] += t1 - t0;
    seconds_[1] += t2 - t1;
    seconds_[2] += classify;
    seconds_[3] += t4 - t2 - classify;
    frames_ += 1;
    return faces_.size();
}

void Pipeline::publish_image(const std::vector<Detection>& faces, const std::vector<std::shared_ptr<Track>>& tracks,
                             const Prediction& pred) {
    faces_.reserve(faces.size());
    const auto& labels = model_->labels();
    for (size_t i = 0; i < faces.size(); ++i) {
        Track& t = *tracks[i];
        if (!t.smoother) t.smoother = std::make_unique<Smoother>(settings_.ema, settings_.hysteresis);
        const float* p = pred.probs.data() + i * pred.classes;
        const int k = t.smoother->update(p, static_cast<size_t>(pred.classes));
        fe_face& f = add_face(faces[i], t);
        floats_.emplace_back(p, p + pred.classes);
        f.probs = floats_.back().data();
        floats_.push_back(t.smoother->probs());
        f.smoothed_probs = floats_.back().data();
        f.label = k;
        f.label_name = labels[k].c_str();
        f.confidence = floats_.back()[k];
        f.raw_label = pred.labels[i];
        if (!pred.uncertainty.empty()) {
            f.has_uncertainty = 1;
            f.uncertainty = pred.uncertainty[i];
        }
    }
}

void Pipeline::publish_video(const std::vector<Detection>& faces, const std::vector<std::shared_ptr<Track>>& tracks,
                             std::vector<std::unique_ptr<Prediction>>& preds) {
    faces_.reserve(faces.size());
    const auto& labels = model_->labels();
    const int length = model_->clip_length();
    for (size_t i = 0; i < faces.size(); ++i) {
        Track& t = *tracks[i];
        if (preds[i]) {
            const Prediction& p = *preds[i];
            if (!t.smoother) t.smoother = std::make_unique<Smoother>(settings_.ema, settings_.hysteresis);
            t.clip_label = t.smoother->update(p.probs.data(), static_cast<size_t>(p.classes));
            t.clip_probs = p.probs;
            t.clip_has_uncertainty = !p.uncertainty.empty();
            t.clip_uncertainty = t.clip_has_uncertainty ? p.uncertainty[0] : 0.f;
            t.has_clip = true;
        }
        fe_face& f = add_face(faces[i], t);
        f.clip_length = length;
        f.clip_frames = stream_->buffered(t.id);
        f.clip_new = preds[i] ? 1 : 0;
        if (!t.has_clip) {
            names_.push_back("warming up " + std::to_string(f.clip_frames) + "/" + std::to_string(length));
            f.label_name = names_.back().c_str();
            continue;
        }
        floats_.push_back(t.clip_probs);
        f.probs = floats_.back().data();
        const auto& probs = floats_.back();
        f.raw_label = static_cast<int32_t>(std::max_element(probs.begin(), probs.end()) - probs.begin());
        floats_.push_back(t.smoother->probs());
        f.smoothed_probs = floats_.back().data();
        f.label = t.clip_label;
        f.label_name = labels[t.clip_label].c_str();
        f.confidence = floats_.back()[t.clip_label];
        f.has_uncertainty = t.clip_has_uncertainty;
        f.uncertainty = t.clip_uncertainty;
    }
}

}  // namespace fei
