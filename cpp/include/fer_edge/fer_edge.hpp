// fer_edge.hpp - header-only C++17 wrapper over the C API (fer_edge.h): RAII, move-only handles,
// errors as fe::Error exceptions carrying the status and message. Everything here is inline and
// uses only the C API, so it works with any build of libfer_edge of the same ABI.
#ifndef FER_EDGE_HPP
#define FER_EDGE_HPP

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fer_edge.h"

namespace fe {

class Error : public std::runtime_error {
public:
    Error(fe_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
    fe_status status() const noexcept { return status_; }

private:
    fe_status status_;
};

namespace detail {
inline void check(fe_status status) {
    if (status != FE_OK) throw Error(status, fe_last_error());  // thread-local: right even on a shared model
}

// Owns one C handle; move-only.
template <typename T, void (*Free)(T*)>
class Handle {
public:
    Handle() = default;
    explicit Handle(T* p) : p_(p) {}
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    Handle(Handle&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    Handle& operator=(Handle&& o) noexcept {
        if (this != &o) {
            Free(p_);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    ~Handle() { Free(p_); }
    T* get() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    T* p_ = nullptr;
};
}  // namespace detail

// A view of caller-owned 8-bit BGR (3 channels) or gray (1) pixels; stride 0 = tightly packed.
inline fe_image image_view(const uint8_t* data, int width, int height, int channels = 3, int stride = 0) {
    return fe_image{data, width, height, stride ? stride : width * channels, channels};
}

class Options {
public:
    Options() {
        fe_options* p = nullptr;
        detail::check(fe_options_create(&p));
        h_ = decltype(h_)(p);
    }
    Options& set(const std::string& key, const std::string& value) {
        detail::check(fe_options_set(h_.get(), key.c_str(), value.c_str()));
        return *this;
    }
    Options& set(const std::string& key, const char* value) { return set(key, std::string(value)); }
    Options& set(const std::string& key, int64_t value) {
        detail::check(fe_options_set_int(h_.get(), key.c_str(), value));
        return *this;
    }
    Options& set(const std::string& key, int value) { return set(key, static_cast<int64_t>(value)); }
    Options& set(const std::string& key, double value) {
        detail::check(fe_options_set_double(h_.get(), key.c_str(), value));
        return *this;
    }
    const fe_options* get() const noexcept { return h_.get(); }

private:
    detail::Handle<fe_options, fe_options_free> h_;
};

// One row of a Prediction, copied out.
struct Result {
    int32_t label;
    std::vector<float> probs, raw;
    bool has_uncertainty;
    float uncertainty;
};

class Prediction {
public:
    explicit Prediction(fe_prediction* p) : h_(p) {}
    size_t size() const { return fe_prediction_count(h_.get()); }
    size_t num_classes() const { return fe_prediction_num_classes(h_.get()); }
    Result operator[](size_t i) const {
        if (i >= size()) throw std::out_of_range("fe::Prediction index out of range");
        const size_t n = num_classes();
        const float* p = fe_prediction_probs(h_.get(), i);
        const float* r = fe_prediction_raw(h_.get(), i);
        Result out{fe_prediction_label(h_.get(), i), std::vector<float>(p, p + n), std::vector<float>(r, r + n), false, 0.f};
        out.has_uncertainty = fe_prediction_uncertainty(h_.get(), i, &out.uncertainty) != 0;
        return out;
    }

private:
    detail::Handle<fe_prediction, fe_prediction_free> h_;
};

class Model {
public:
    // backend "" = by suffix; device "" = auto.
    explicit Model(const std::string& path, const std::string& backend = "", const std::string& device = "",
                   const Options* options = nullptr) {
        fe_model* p = nullptr;
        detail::check(fe_model_open(path.c_str(), backend.empty() ? nullptr : backend.c_str(),
                                    device.empty() ? nullptr : device.c_str(), options ? options->get() : nullptr, &p));
        h_ = decltype(h_)(p);
    }
    std::vector<std::string> labels() const {
        std::vector<std::string> out;
        for (size_t i = 0; i < fe_model_num_classes(h_.get()); ++i) out.emplace_back(fe_model_label(h_.get(), i));
        return out;
    }
    std::string method() const { return fe_model_method(h_.get()); }
    std::string backend() const { return fe_model_backend(h_.get()); }
    std::string metadata_json() const { return fe_model_metadata_json(h_.get()); }
    bool is_video() const { return fe_model_is_video(h_.get()) != 0; }
    int clip_length() const { return fe_model_clip_length(h_.get()); }

    Prediction predict(const std::vector<fe_image>& crops) {
        fe_prediction* p = nullptr;
        detail::check(fe_model_predict(h_.get(), crops.data(), crops.size(), &p));
        return Prediction(p);
    }
    Prediction predict_clips(const std::vector<fe_image>& frames, size_t num_clips) {
        fe_prediction* p = nullptr;
        detail::check(fe_model_predict_clips(h_.get(), frames.data(), num_clips, &p));
        return Prediction(p);
    }
    fe_model* get() const noexcept { return h_.get(); }

private:
    detail::Handle<fe_model, fe_model_free> h_;
};

class Pipeline {
public:
    explicit Pipeline(Model& model, const Options* options = nullptr) {
        fe_pipeline* p = nullptr;
        detail::check(fe_pipeline_create(model.get(), options ? options->get() : nullptr, &p));
        h_ = decltype(h_)(p);
    }
    // The faces of the next frame; the pointers inside stay valid until the next process()/reset().
    std::vector<const fe_face*> process(const fe_image& frame) {
        size_t n = 0;
        detail::check(fe_pipeline_process(h_.get(), &frame, &n));
        std::vector<const fe_face*> out;
        for (size_t i = 0; i < n; ++i) out.push_back(fe_pipeline_face(h_.get(), i));
        return out;
    }
    void reset() { detail::check(fe_pipeline_reset(h_.get())); }
    double stage_seconds(const std::string& stage) const { return fe_pipeline_stage_seconds(h_.get(), stage.c_str()); }
    uint64_t frames() const { return fe_pipeline_frames(h_.get()); }
    fe_pipeline* get() const noexcept { return h_.get(); }

private:
    detail::Handle<fe_pipeline, fe_pipeline_free> h_;
};

}  // namespace fe

#endif  // FER_EDGE_HPP
