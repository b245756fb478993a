// The C boundary: handles, status codes, last-error strings. Every entry point runs its body in
// guard(), so no C++ exception crosses into C.
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include <opencv2/core.hpp>

#include "error.hpp"
#include "model.hpp"
#include "options.hpp"
#include "pipeline.hpp"

#ifndef FE_VERSION_STRING
#define FE_VERSION_STRING "0.0.0"
#endif

// A handle's last error. Written under a lock (a model may fail on several threads at once); read
// by fe_*_last_error, which is only meaningful when one thread uses the handle (else: fe_last_error).
struct ErrorSlot {
    std::mutex lock;
    std::string text;
    void set(const std::string& message) {
        std::lock_guard<std::mutex> hold(lock);
        text = message;
    }
};

struct fe_options {
    fei::Options options;
};

struct fe_model {
    std::shared_ptr<fei::Model> model;
    ErrorSlot error;
    std::string backend;
};

struct fe_prediction {
    fei::Prediction p;
};

struct fe_pipeline {
    std::unique_ptr<fei::Pipeline> pipeline;
    ErrorSlot error;
};

namespace {

thread_local std::string t_last_error;

// Messages quote users' files and engines: make each one line of valid UTF-8 (control characters become
// spaces, bytes that are not UTF-8 become '?'), so a C caller can print it and a binding can decode it.
std::string clean_message(const std::string& in) {
    std::string out;
    out.reserve(in.size());
    for (size_t i = 0; i < in.size();) {
        const unsigned char c = static_cast<unsigned char>(in[i]);
        size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        bool ok = len > 0 && i + len <= in.size();
        for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(in[i + k]) >> 6) == 0x2;
        if (!ok) {
            out += '?';
            ++i;
        } else if (len == 1) {
            out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
            ++i;
        } else {
            out.append(in, i, len);
            i += len;
        }
    }
    return out;
}

template <typename F>
fe_status guard(ErrorSlot* handle_error, F&& body) noexcept {
    std::string message;
    fe_status status = FE_OK;
    try {
        body();
        return FE_OK;
    } catch (const fei::Error& e) {
        status = e.status();
        message = e.what();
    } catch (const std::bad_alloc&) {
        status = FE_ERR_OUT_OF_MEMORY;
        message = "out of memory";
    } catch (const cv::Exception& e) {
        status = FE_ERR_INTERNAL;
        message = "OpenCV failed: " + fei::first_line(e.what());
    } catch (const std::exception& e) {
        status = FE_ERR_INTERNAL;
        message = "internal error: " + fei::first_line(e.what());
    } catch (...) {
        status = FE_ERR_INTERNAL;
        message = "internal error (unknown exception)";
    }
    try {
        message = clean_message(message);
        t_last_error = message;
        if (handle_error) handle_error->set(message);
    } catch (...) {  // no memory even for the message: the status says enough
    }
    return status;
}

void need(const void* p, const char* what) {
    if (!p) fei::fail(FE_ERR_INVALID_ARGUMENT, std::string(what) + " is NULL");
}

// A checked view of caller pixels (no copy).
cv::Mat view(const fe_image& im, const std::string& what, bool color_only) {
    if (!im.data) fei::fail(FE_ERR_INVALID_ARGUMENT, what + " has no pixels (data is NULL)");
    if (im.channels != 3 && (color_only || im.channels != 1))
        fei::fail(FE_ERR_INVALID_ARGUMENT, what + " must have " + (color_only ? "3 channels (BGR)" : "1 (gray) or 3 (BGR) channels") +
                                              ", got " + std::to_string(im.channels));
    if (im.width <= 0 || im.height <= 0 || im.width > 65536 || im.height > 65536)
        fei::fail(FE_ERR_INVALID_ARGUMENT, what + " is " + std::to_string(im.width) + "x" + std::to_string(im.height) +
                                              " pixels; width and height must be 1 to 65536");
    if (im.stride < im.width * im.channels)
        fei::fail(FE_ERR_INVALID_ARGUMENT, what + " has stride " + std::to_string(im.stride) + " bytes, less than width x channels (" +
                                              std::to_string(im.width * im.channels) + ")");
    return cv::Mat(im.height, im.width, im.channels == 3 ? CV_8UC3 : CV_8UC1, const_cast<uint8_t*>(im.data),
                   static_cast<size_t>(im.stride));
}

std::vector<cv::Mat> views(const fe_image* images, size_t count, const char* what) {
    if (count && !images) fei::fail(FE_ERR_INVALID_ARGUMENT, std::string(what) + " is NULL but count is " + std::to_string(count));
    if (count > (1u << 20)) fei::fail(FE_ERR_INVALID_ARGUMENT, "count " + std::to_string(count) + " is implausibly large");
    std::vector<cv::Mat> out;
    for (size_t i = 0; i < count; ++i) out.push_back(view(images[i], std::string(what) + "[" + std::to_string(i) + "]", false));
    return out;
}

}  // namespace

extern "C" {

const char* fe_version(void) { return FE_VERSION_STRING; }
int fe_abi_version(void) { return FE_ABI_VERSION; }
const char* fe_last_error(void) { return t_last_error.c_str(); }

const char* fe_status_name(fe_status status) {
    switch (status) {
        case FE_OK: return "FE_OK";
        case FE_ERR_INVALID_ARGUMENT: return "FE_ERR_INVALID_ARGUMENT";
        case FE_ERR_NOT_FOUND: return "FE_ERR_NOT_FOUND";
        case FE_ERR_BAD_ARTIFACT: return "FE_ERR_BAD_ARTIFACT";
        case FE_ERR_UNSUPPORTED: return "FE_ERR_UNSUPPORTED";
        case FE_ERR_BACKEND: return "FE_ERR_BACKEND";
        case FE_ERR_OUT_OF_MEMORY: return "FE_ERR_OUT_OF_MEMORY";
        case FE_ERR_INTERNAL: return "FE_ERR_INTERNAL";
    }
    return "FE_ERR_UNKNOWN";
}

int fe_backend_available(const char* backend) { return backend && fei::backend_available(backend) ? 1 : 0; }

fe_status fe_options_create(fe_options** out) {
    return guard(nullptr, [&] {
        need(out, "out");
        *out = nullptr;
        *out = new fe_options();
    });
}

void fe_options_free(fe_options* options) { delete options; }

fe_status fe_options_set(fe_options* options, const char* key, const char* value) {
    return guard(nullptr, [&] {
        need(options, "options");
        need(key, "key");
        need(value, "value");
        if (!*key) fei::fail(FE_ERR_INVALID_ARGUMENT, "an option key is empty");
        options->options.set(key, value);
    });
}

fe_status fe_options_set_int(fe_options* options, const char* key, int64_t value) {
    return fe_options_set(options, key, std::to_string(value).c_str());
}

fe_status fe_options_set_double(fe_options* options, const char* key, double value) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", value);
    return fe_options_set(options, key, buf);
}

fe_status fe_model_open(const char* path, const char* backend, const char* device, const fe_options* options,
                        fe_model** out) {
    return guard(nullptr, [&] {
        need(out, "out");
        *out = nullptr;
        need(path, "path");
        static const fei::Options none;
        auto handle = std::make_unique<fe_model>();
        handle->model = fei::Model::open(path, backend ? backend : "", device ? device : "", options ? options->options : none);
        handle->backend = handle->model->backend_name();
        *out = handle.release();
    });
}

void fe_model_free(fe_model* model) { delete model; }
const char* fe_model_last_error(const fe_model* model) { return model ? model->error.text.c_str() : ""; }

size_t fe_model_num_classes(const fe_model* model) { return model ? model->model->labels().size() : 0; }
const char* fe_model_label(const fe_model* model, size_t index) {
    return model && index < model->model->labels().size() ? model->model->labels()[index].c_str() : nullptr;
}
const char* fe_model_method(const fe_model* model) { return model ? model->model->metadata().method.c_str() : nullptr; }
const char* fe_model_backend(const fe_model* model) { return model ? model->backend.c_str() : nullptr; }
const char* fe_model_metadata_json(const fe_model* model) { return model ? model->model->metadata().json.c_str() : nullptr; }
int fe_model_is_video(const fe_model* model) { return model && model->model->is_video() ? 1 : 0; }
int fe_model_clip_length(const fe_model* model) { return model ? model->model->clip_length() : 0; }

fe_status fe_model_predict(fe_model* model, const fe_image* crops, size_t count, fe_prediction** out) {
    return guard(model ? &model->error : nullptr, [&] {
        need(out, "out");
        *out = nullptr;
        need(model, "model");
        auto mats = views(crops, count, "crops");
        auto result = std::make_unique<fe_prediction>();
        result->p = model->model->predict(mats);
        *out = result.release();
    });
}

fe_status fe_model_predict_clips(fe_model* model, const fe_image* frames, size_t num_clips, fe_prediction** out) {
    return guard(model ? &model->error : nullptr, [&] {
        need(out, "out");
        *out = nullptr;
        need(model, "model");
        if (!model->model->is_video())
            fei::fail(FE_ERR_UNSUPPORTED, "this is an image model: pass face crops (fe_model_predict), not clips");
        const size_t t = static_cast<size_t>(model->model->clip_length());
        if (num_clips > (1u << 16)) fei::fail(FE_ERR_INVALID_ARGUMENT, "num_clips is implausibly large");
        auto mats = views(frames, num_clips * t, "frames");
        auto result = std::make_unique<fe_prediction>();
        result->p = model->model->predict_clips(mats, num_clips);
        *out = result.release();
    });
}

void fe_prediction_free(fe_prediction* prediction) { delete prediction; }
size_t fe_prediction_count(const fe_prediction* p) { return p ? static_cast<size_t>(p->p.count) : 0; }
size_t fe_prediction_num_classes(const fe_prediction* p) { return p ? static_cast<size_t>(p->p.classes) : 0; }
const float* fe_prediction_probs(const fe_prediction* p, size_t i) {
    return p && i < static_cast<size_t>(p->p.count) ? p->p.probs.data() + i * p->p.classes : nullptr;
}
const float* fe_prediction_raw(const fe_prediction* p, size_t i) {
    return p && i < static_cast<size_t>(p->p.count) ? p->p.raw.data() + i * p->p.classes : nullptr;
}
int32_t fe_prediction_label(const fe_prediction* p, size_t i) {
    return p && i < static_cast<size_t>(p->p.count) ? p->p.labels[i] : -1;
}
int fe_prediction_uncertainty(const fe_prediction* p, size_t i, float* out) {
    if (!p || i >= p->p.uncertainty.size()) return 0;
    if (out) *out = p->p.uncertainty[i];
    return 1;
}

fe_status fe_pipeline_create(fe_model* model, const fe_options* options, fe_pipeline** out) {
    return guard(model ? &model->error : nullptr, [&] {
        need(out, "out");
        *out = nullptr;
        need(model, "model");
        static const fei::Options none;
        auto handle = std::make_unique<fe_pipeline>();
        handle->pipeline = std::make_unique<fei::Pipeline>(model->model, options ? options->options : none);
        *out = handle.release();
    });
}

void fe_pipeline_free(fe_pipeline* pipeline) { delete pipeline; }
const char* fe_pipeline_last_error(const fe_pipeline* pipeline) { return pipeline ? pipeline->error.text.c_str() : ""; }

fe_status fe_pipeline_process(fe_pipeline* pipeline, const fe_image* frame, size_t* num_faces) {
    return guard(pipeline ? &pipeline->error : nullptr, [&] {
        if (num_faces) *num_faces = 0;
        need(pipeline, "pipeline");
        need(frame, "frame");
        need(num_faces, "num_faces");
        cv::Mat m = view(*frame, "frame", true);
        *num_faces = pipeline->pipeline->process(m);
    });
}

const fe_face* fe_pipeline_face(const fe_pipeline* pipeline, size_t index) {
    return pipeline ? pipeline->pipeline->face(index) : nullptr;
}

fe_status fe_pipeline_reset(fe_pipeline* pipeline) {
    return guard(pipeline ? &pipeline->error : nullptr, [&] {
        need(pipeline, "pipeline");
        pipeline->pipeline->reset();
    });
}

double fe_pipeline_stage_seconds(const fe_pipeline* pipeline, const char* stage) {
    return pipeline && stage ? pipeline->pipeline->stage_seconds(stage) : -1.0;
}

uint64_t fe_pipeline_frames(const fe_pipeline* pipeline) { return pipeline ? pipeline->pipeline->frames() : 0; }

}  // extern "C"
