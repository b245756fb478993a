// ONNX Runtime backend (C++ API over the ABI-stable C API): .onnx files on the CPU, or CUDA where the
// library was built with its CUDA execution provider. Metadata: the model's custom metadata map
// ("fer_edge" in ONNX metadata_props).
//
// Compiled only where onnxruntime_cxx_api.h is found (ONNXRUNTIME_ROOT: the include/ and lib/ of an
// ONNX Runtime release archive or NuGet package; PyPI wheels carry no headers). Headers of an older
// release work with a newer library (ORT's C API is append-only).
//
// Thread safety: Ort::Session::Run may be called from several threads at once.
#include <cstring>
#include <mutex>

#include <onnxruntime_cxx_api.h>

#include "backend.hpp"
#include "error.hpp"

namespace fei {
namespace {

Ort::Env& environment() {
    static Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "fer_edge");  // one per process, as ORT asks
    return env;
}

class OnnxRuntimeBackend final : public Backend {
public:
    OnnxRuntimeBackend(const std::string& path, const std::string& device, const Options& options) {
        const std::string file = path.substr(path.find_last_of('/') + 1);
        std::string precision = options.text("precision", "");
        if (!precision.empty() && precision != "f32" && precision != "fp32")
            fail(FE_ERR_INVALID_ARGUMENT, "option precision='" + precision + "': ONNX Runtime runs the graph as it "
                                          "is; export an fp16 or int8 artifact instead");
        try {
            Ort::SessionOptions so;
            so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
            if (options.has("threads")) so.SetIntraOpNumThreads(static_cast<int>(options.integer("threads", 0, 1, 1024)));
            if (device.empty() || device == "auto" || device == "cpu") {
                device_ = "cpu";
            } else if (device.rfind("cuda", 0) == 0) {
                OrtCUDAProviderOptions cuda{};
                cuda.device_id = device.size() > 5 ? std::stoi(device.substr(5)) : 0;
                so.AppendExecutionProvider_CUDA(cuda);
                device_ = "cuda:" + std::to_string(cuda.device_id);
            } else {
                fail(FE_ERR_UNSUPPORTED, "ONNX Runtime device '" + device + "' is not supported; use cpu or cuda:N");
            }
            session_ = std::make_unique<Ort::Session>(environment(), path.c_str(), so);
        } catch (const Error&) {
            throw;
        } catch (const Ort::Exception& e) {
            const bool provider = std::strstr(e.what(), "CUDA") != nullptr;
            fail(provider ? FE_ERR_UNSUPPORTED : FE_ERR_BAD_ARTIFACT,
                 "ONNX Runtime cannot load " + file + ": " + first_line(e.what()));
        } catch (const std::exception& e) {
            fail(FE_ERR_INVALID_ARGUMENT, "bad device '" + device + "': " + e.what());
        }
        Ort::AllocatorWithDefaultOptions alloc;
        for (size_t i = 0; i < session_->GetInputCount(); ++i)
            inputs_.push_back({session_->GetInputNameAllocated(i, alloc).get(),
                               session_->GetInputTypeInfo(i).GetTensorTypeAndShapeInfo().GetShape()});
        for (size_t i = 0; i < session_->GetOutputCount(); ++i)
            outputs_.push_back({session_->GetOutputNameAllocated(i, alloc).get(),
                                session_->GetOutputTypeInfo(i).GetTensorTypeAndShapeInfo().GetShape()});
        Ort::ModelMetadata meta = session_->GetModelMetadata();
        Ort::AllocatedStringPtr text = meta.LookupCustomMetadataMapAllocated("fer_edge", alloc);
        if (text) metadata_ = text.get();
    }

    std::string name() const override { return "onnxruntime"; }
    std::string device() const override { return device_; }
    const std::vector<TensorInfo>& inputs() const override { return inputs_; }
    const std::vector<TensorInfo>& outputs() const override { return outputs_; }
    std::string metadata_json() const override { return metadata_; }

    std::map<std::string, Tensor> run(const std::map<std::string, TensorView>& feeds) override {
        std::map<std::string, Tensor> out;
        try {
            Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
            std::vector<const char*> in_names, out_names;
            std::vector<Ort::Value> values;
            for (const auto& kv : feeds) {
                in_names.push_back(kv.first.c_str());
                values.push_back(Ort::Value::CreateTensor<float>(mem, const_cast<float*>(kv.second.data),
                                                                 static_cast<size_t>(element_count(kv.second.shape)),
                                                                 kv.second.shape.data(), kv.second.shape.size()));
            }
            for (const auto& o : outputs_) out_names.push_back(o.name.c_str());
            auto results = session_->Run(Ort::RunOptions{nullptr}, in_names.data(), values.data(), values.size(),
                                         out_names.data(), out_names.size());
            for (size_t i = 0; i < results.size(); ++i) {
                auto info = results[i].GetTensorTypeAndShapeInfo();
                if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
                    fail(FE_ERR_BACKEND, "output " + outputs_[i].name + " is not float32; re-export with float outputs");
                Tensor& t = out[outputs_[i].name];
                t.shape = info.GetShape();
                const float* src = results[i].GetTensorData<float>();
                t.data.assign(src, src + info.GetElementCount());
            }
        } catch (const Error&) {
            throw;
        } catch (const std::exception& e) {
            fail(FE_ERR_BACKEND, "ONNX Runtime inference failed: " + first_line(e.what()));
        }
        return out;
    }

private:
    std::unique_ptr<Ort::Session> session_;
    std::string device_, metadata_;
    std::vector<TensorInfo> inputs_, outputs_;
};

}  // namespace

std::unique_ptr<Backend> make_onnxruntime(const std::string& path, const std::string& device, const Options& options) {
    return std::make_unique<OnnxRuntimeBackend>(path, device, options);
}

}  // namespace fei
