// OpenVINO backend: IR (.xml + .bin) and ONNX files on CPU, GPU, NPU or AUTO.
//
// Thread safety: compiled models are shared; each run takes an infer request from a small pool
// (an infer request must not be used by two threads at once), so one backend serves many threads.
// Static shapes: a graph with free dimensions (a dynamic batch) is compiled once per input shape it
// meets (at most kShapeCache of them, least recently used dropped): OpenVINO's CPU plugin runs a
// static shape ~15% faster than the dynamic graph, with the same results (option static_shapes=0: off).
// Metadata: rt_info "fer_edge" (IR), else the ONNX metadata_props that OpenVINO's ONNX reader keeps
// under rt_info "framework" (as src/fer_edge/runtimes/openvino.py reads it).
#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>

#include <openvino/openvino.hpp>

#include "backend.hpp"
#include "error.hpp"
#include "metadata.hpp"

namespace fei {
namespace {

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return s;
}

std::string resolve_device(const std::string& device, const std::vector<std::string>& available) {
    std::string list;
    for (const auto& d : available) list += (list.empty() ? "" : ", ") + d;
    if (device.empty() || device == "auto") return available == std::vector<std::string>{"CPU"} ? "CPU" : "AUTO";
    std::string u = upper(device);
    std::string family = u.substr(0, u.find_first_of(".:"));
    if (family == "AUTO" || family == "MULTI" || family == "HETERO" || family == "BATCH") return u;
    if (family == "CUDA")
        fail(FE_ERR_UNSUPPORTED, "OpenVINO has no device '" + device + "': CUDA is for the tensorrt and onnxruntime "
                                 "backends (available: " + list + ")");
    for (const auto& d : available)
        if (d == u || d.substr(0, d.find('.')) == u) return u;
    fail(FE_ERR_UNSUPPORTED, "OpenVINO device '" + device + "' is not available on this machine (available: " +
                                 (list.empty() ? "none" : list) + "); use device cpu or AUTO");
}

std::string rt_text(const std::shared_ptr<ov::Model>& model, const std::vector<std::string>& path) {
    try {
        if (path.size() == 1 && model->has_rt_info(path[0])) return model->get_rt_info<std::string>(path[0]);
        if (path.size() == 2 && model->has_rt_info(path[0], path[1]))
            return model->get_rt_info<std::string>(path[0], path[1]);
    } catch (const std::exception&) {  // a parent of `path` is a plain value, not a map
    }
    return "";
}

std::vector<int64_t> dims(const ov::PartialShape& shape) {
    std::vector<int64_t> out;
    if (shape.rank().is_dynamic()) return out;
    for (const auto& d : shape) out.push_back(d.is_static() ? d.get_length() : -1);
    return out;
}

class OpenVINOBackend final : public Backend {
public:
    OpenVINOBackend(const std::string& path, const std::string& device, const Options& options) {
        std::string file = path.substr(path.find_last_of('/') + 1);
        try {
            device_ = resolve_device(device, core_.get_available_devices());
        } catch (const ov::Exception& e) {
            fail(FE_ERR_BACKEND, "OpenVINO cannot list its devices: " + first_line(e.what()));
        }
        std::shared_ptr<ov::Model> model;
        try {
            model = core_.read_model(path);
        } catch (const std::exception& e) {
            fail(FE_ERR_BAD_ARTIFACT, "OpenVINO cannot read " + file + ": " + first_line(e.what()) +
                                          "; check that it is a complete .onnx or .xml (with its .bin) file");
        }
        metadata_ = rt_text(model, {kMetadataKey});
        if (metadata_.empty()) metadata_ = rt_text(model, {"framework", kMetadataKey});
        ov::AnyMap config;
        std::string precision = options.text("precision", "");
        if (!precision.empty()) {
            std::string p = precision;
            std::transform(p.begin(), p.end(), p.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            if (p == "f32" || p == "fp32") config[ov::hint::inference_precision.name()] = ov::element::f32;
            else if (p == "f16" || p == "fp16") config[ov::hint::inference_precision.name()] = ov::element::f16;
            else if (p == "bf16") config[ov::hint::inference_precision.name()] = ov::element::bf16;
            else fail(FE_ERR_INVALID_ARGUMENT, "option precision='" + precision + "'; OpenVINO takes one of f32, bf16, f16");
        }
        std::string hint = upper(options.text("performance_hint", "LATENCY"));
        if (hint == "LATENCY") config[ov::hint::performance_mode.name()] = ov::hint::PerformanceMode::LATENCY;
        else if (hint == "THROUGHPUT") config[ov::hint::performance_mode.name()] = ov::hint::PerformanceMode::THROUGHPUT;
        else if (hint == "CUMULATIVE_THROUGHPUT")
            config[ov::hint::performance_mode.name()] = ov::hint::PerformanceMode::CUMULATIVE_THROUGHPUT;
        else fail(FE_ERR_INVALID_ARGUMENT, "option performance_hint='" + hint + "'; use LATENCY, THROUGHPUT or CUMULATIVE_THROUGHPUT");
        if (options.has("threads")) config[ov::inference_num_threads.name()] = static_cast<int>(options.integer("threads", 0, 1, 1024));
        if (options.has("cache_dir")) config[ov::cache_dir.name()] = options.text("cache_dir", "");
        file_ = file;
        config_ = config;
        static_shapes_ = options.integer("static_shapes", 1, 0, 1) == 1;
        auto dynamic = std::make_shared<Compiled>();
        try {
            dynamic->model = core_.compile_model(model, device_, config);
        } catch (const std::exception& e) {
            fail(FE_ERR_BAD_ARTIFACT, "OpenVINO cannot compile " + file + " for " + device_ + ": " + first_line(e.what()));
        }
        dynamic_ = dynamic;
        for (const auto& in : dynamic->model.inputs()) {
            inputs_.push_back({in.get_any_name(), dims(in.get_partial_shape())});
            static_shapes_ = static_shapes_ && !in.get_partial_shape().is_static();
        }
        for (const auto& out : dynamic->model.outputs()) outputs_.push_back({out.get_any_name(), dims(out.get_partial_shape())});
        if (static_shapes_) source_ = model;
    }

    std::string name() const override { return "openvino"; }
    std::string device() const override { return device_; }
    const std::vector<TensorInfo>& inputs() const override { return inputs_; }
    const std::vector<TensorInfo>& outputs() const override { return outputs_; }
    std::string metadata_json() const override { return metadata_; }

    std::map<std::string, Tensor> run(const std::map<std::string, TensorView>& feeds) override {
        Lease lease(compiled_for(feeds));
        std::map<std::string, Tensor> out;
        try {
            for (const auto& kv : feeds) {
                ov::Shape shape(kv.second.shape.begin(), kv.second.shape.end());
                // wraps the caller's memory for the duration of infer(); OpenVINO only reads inputs
                ov::Tensor t(ov::element::f32, shape, const_cast<float*>(kv.second.data));
                lease.request.set_tensor(kv.first, t);
            }
            lease.request.infer();
            for (const auto& info : outputs_) {
                ov::Tensor t = lease.request.get_tensor(info.name);
                if (t.get_element_type() != ov::element::f32)
                    fail(FE_ERR_BACKEND, "output " + info.name + " is " + t.get_element_type().get_type_name() +
                                             ", not f32; re-export the model with float outputs");
                Tensor& dst = out[info.name];
                for (size_t d : t.get_shape()) dst.shape.push_back(static_cast<int64_t>(d));
                const float* src = t.data<const float>();
                dst.data.assign(src, src + t.get_size());
            }
        } catch (const Error&) {
            throw;
        } catch (const std::exception& e) {
            fail(FE_ERR_BACKEND, "OpenVINO inference failed: " + first_line(e.what()));
        }
        return out;
    }

private:
    static constexpr size_t kShapeCache = 8;

    // One compiled model and its idle infer requests.
    struct Compiled {
        ov::CompiledModel model;
        std::mutex lock;
        std::vector<ov::InferRequest> idle;
    };

    // An infer request borrowed from a compiled model's pool for one run, returned on scope exit.
    struct Lease {
        explicit Lease(std::shared_ptr<Compiled> c) : owner(std::move(c)) {
            std::lock_guard<std::mutex> hold(owner->lock);
            if (!owner->idle.empty()) {
                request = std::move(owner->idle.back());
                owner->idle.pop_back();
                return;
            }
            try {
                request = owner->model.create_infer_request();
            } catch (const std::exception& e) {
                fail(FE_ERR_BACKEND, "OpenVINO cannot create an infer request: " + first_line(e.what()));
            }
        }
        ~Lease() {
            std::lock_guard<std::mutex> hold(owner->lock);
            if (owner->idle.size() < 16) owner->idle.push_back(std::move(request));  // bounded pool
        }
        std::shared_ptr<Compiled> owner;
        ov::InferRequest request;
    };

    // The compiled model for these input shapes: the dynamic one, or one compiled for exactly them.
    std::shared_ptr<Compiled> compiled_for(const std::map<std::string, TensorView>& feeds) {
        if (!static_shapes_) return dynamic_;
        std::string key;
        for (const auto& kv : feeds) {
            key += kv.first + ":";
            for (int64_t d : kv.second.shape) key += std::to_string(d) + ",";
        }
        std::lock_guard<std::mutex> hold(cache_lock_);
        for (auto it = cache_.begin(); it != cache_.end(); ++it)
            if (it->first == key) {
                auto found = *it;
                cache_.erase(it);
                cache_.push_back(found);  // most recently used last
                return found.second;
            }
        auto c = std::make_shared<Compiled>();
        try {
            std::shared_ptr<ov::Model> fixed = source_->clone();
            std::map<std::string, ov::PartialShape> shapes;
            for (const auto& kv : feeds)
                shapes[kv.first] = ov::PartialShape(std::vector<ov::Dimension>(kv.second.shape.begin(), kv.second.shape.end()));
            fixed->reshape(shapes);
            c->model = core_.compile_model(fixed, device_, config_);
        } catch (const std::exception& e) {
            fail(FE_ERR_INVALID_ARGUMENT, "OpenVINO cannot run " + file_ + " on inputs of this shape: " + first_line(e.what()));
        }
        if (cache_.size() >= kShapeCache) cache_.erase(cache_.begin());
        cache_.emplace_back(key, c);
        return c;
    }

    ov::Core core_;
    std::shared_ptr<ov::Model> source_;  // kept to compile static shapes
    ov::AnyMap config_;
    bool static_shapes_ = false;
    std::shared_ptr<Compiled> dynamic_;
    std::mutex cache_lock_;
    std::vector<std::pair<std::string, std::shared_ptr<Compiled>>> cache_;
    std::string device_, metadata_, file_;
    std::vector<TensorInfo> inputs_, outputs_;
};

}  // namespace

std::unique_ptr<Backend> make_openvino(const std::string& path, const std::string& device, const Options& options) {
    return std::make_unique<OpenVINOBackend>(path, device, options);
}

}  // namespace fei
