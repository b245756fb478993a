// TensorRT backend (10.x and 11.x): a serialized engine (.engine / .plan) with its fer-edge metadata
// in the "<engine>.json" sidecar (engines cannot carry metadata).
//
// Compiled only where NvInfer.h and the CUDA runtime are found (CMake option FE_WITH_TENSORRT).
// API used: createInferRuntime, IRuntime::deserializeCudaEngine, by-name I/O (getNbIOTensors,
// getIOTensorName, getTensorIOMode, setInputShape, getTensorShape, setTensorAddress), enqueueV3.
// The logger outlives every TensorRT object (declared first, destroyed last); objects are released
// with delete (TensorRT 10 removed destroy()).
//
// Thread safety: one execution context, so runs are serialised with a mutex (as the Python backend);
// use one model per thread for parallel GPU work.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include "backend.hpp"
#include "error.hpp"

namespace fei {
namespace {

class Logger final : public nvinfer1::ILogger {
public:
    void log(Severity severity, const char* msg) noexcept override {
        if (severity > Severity::kERROR) return;
        try {
            std::lock_guard<std::mutex> hold(lock_);
            last_ = msg ? msg : "";
        } catch (...) {
        }
    }
    std::string last() {
        std::lock_guard<std::mutex> hold(lock_);
        return last_;
    }

private:
    std::mutex lock_;
    std::string last_;
};

void cuda_check(cudaError_t status, const char* what) {
    if (status != cudaSuccess)
        fail(FE_ERR_BACKEND, std::string("CUDA ") + what + " failed: " + cudaGetErrorString(status));
}

// A device buffer that grows to the largest size asked for.
struct DeviceBuffer {
    void* ptr = nullptr;
    size_t bytes = 0;
    void reserve(size_t n) {
        if (n <= bytes) return;
        if (ptr) cudaFree(ptr);
        ptr = nullptr;
        bytes = 0;
        cuda_check(cudaMalloc(&ptr, n), "cudaMalloc");
        bytes = n;
    }
    ~DeviceBuffer() {
        if (ptr) cudaFree(ptr);
    }
};

int device_index(const std::string& device) {
    if (device.empty() || device == "auto" || device == "gpu" || device == "cuda") return 0;
    for (const char* prefix : {"cuda:", "gpu:"}) {
        size_t n = std::strlen(prefix);
        if (device.compare(0, n, prefix) == 0 && device.size() > n &&
            device.find_first_not_of("0123456789", n) == std::string::npos)
            return std::stoi(device.substr(n));
    }
    fail(FE_ERR_UNSUPPORTED, "TensorRT runs on CUDA devices: use device auto, cuda or cuda:N, not '" + device + "'");
}

class TensorRTBackend final : public Backend {
public:
    TensorRTBackend(const std::string& path, const std::string& device, const Options& options) {
        const std::string file = path.substr(path.find_last_of('/') + 1);
        std::string precision = options.text("precision", "");
        if (!precision.empty())
            fail(FE_ERR_INVALID_ARGUMENT, "option precision is fixed when a TensorRT engine is built; rebuild the engine "
                                          "(fer-edge build-engine) instead of passing it");
        device_ = device_index(device);
        int count = 0;
        cuda_check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
        if (device_ >= count)
            fail(FE_ERR_UNSUPPORTED, "CUDA device " + std::to_string(device_) + " is not present (this machine has " +
                                         std::to_string(count) + ")");
        cuda_check(cudaSetDevice(device_), "cudaSetDevice");
        std::ifstream in(path, std::ios::binary);
        std::vector<char> blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (blob.empty()) fail(FE_ERR_BAD_ARTIFACT, file + " is empty or unreadable; rebuild the engine");
        runtime_.reset(nvinfer1::createInferRuntime(logger_));
        if (!runtime_) fail(FE_ERR_BACKEND, "TensorRT cannot create a runtime: " + logger_.last());
        engine_.reset(runtime_->deserializeCudaEngine(blob.data(), blob.size()));
        if (!engine_)
            fail(FE_ERR_BAD_ARTIFACT, "TensorRT cannot load " + file + " (" + first_line(logger_.last()) +
                                          "); engines are tied to the GPU and TensorRT version: rebuild it on this machine");
        context_.reset(engine_->createExecutionContext());
        if (!context_) fail(FE_ERR_BACKEND, "TensorRT cannot create an execution context: " + logger_.last());
        cuda_check(cudaStreamCreate(&stream_), "cudaStreamCreate");
        for (int i = 0; i < engine_->getNbIOTensors(); ++i) {
            const char* name = engine_->getIOTensorName(i);
            if (engine_->getTensorDataType(name) != nvinfer1::DataType::kFLOAT)
                fail(FE_ERR_BAD_ARTIFACT, file + ": tensor '" + std::string(name) +
                                              "' is not float32; build the engine with float inputs and outputs");
            nvinfer1::Dims dims = engine_->getTensorShape(name);
            TensorInfo info{name, std::vector<int64_t>(dims.d, dims.d + dims.nbDims)};
            if (engine_->getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT) {
                if (!info.shape.empty() && info.shape[0] < 0) {
                    nvinfer1::Dims top = engine_->getProfileShape(name, 0, nvinfer1::OptProfileSelector::kMAX);
                    if (top.nbDims > 0 && (max_batch_ == 0 || top.d[0] < max_batch_)) max_batch_ = top.d[0];
                }
                inputs_.push_back(std::move(info));
            } else {
                outputs_.push_back(std::move(info));
            }
        }
        metadata_ = read_sidecar(path);
        buffers_.resize(inputs_.size() + outputs_.size());
    }

    ~TensorRTBackend() override {
        if (stream_) cudaStreamDestroy(stream_);
    }

    std::string name() const override { return "tensorrt"; }
    std::string device() const override { return "cuda:" + std::to_string(device_); }
    const std::vector<TensorInfo>& inputs() const override { return inputs_; }
    const std::vector<TensorInfo>& outputs() const override { return outputs_; }
    std::string metadata_json() const override { return metadata_; }
    int64_t max_batch() const override { return max_batch_; }

    std::map<std::string, Tensor> run(const std::map<std::string, TensorView>& feeds) override {
        std::lock_guard<std::mutex> hold(lock_);
        cuda_check(cudaSetDevice(device_), "cudaSetDevice");
        for (size_t i = 0; i < inputs_.size(); ++i) {
            auto it = feeds.find(inputs_[i].name);
            if (it == feeds.end()) fail(FE_ERR_INVALID_ARGUMENT, "input '" + inputs_[i].name + "' is missing");
            const TensorView& v = it->second;
            nvinfer1::Dims dims{};
            dims.nbDims = static_cast<int32_t>(v.shape.size());
            for (size_t d = 0; d < v.shape.size(); ++d) dims.d[d] = v.shape[d];
            if (!context_->setInputShape(inputs_[i].name.c_str(), dims))
                fail(FE_ERR_INVALID_ARGUMENT, "TensorRT refuses the input shape for '" + inputs_[i].name + "' (" +
                                                  first_line(logger_.last()) + "); the engine's profile does not cover it");
            const size_t bytes = static_cast<size_t>(element_count(v.shape)) * sizeof(float);
            buffers_[i].reserve(bytes);
            cuda_check(cudaMemcpyAsync(buffers_[i].ptr, v.data, bytes, cudaMemcpyHostToDevice, stream_), "copy to device");
            context_->setTensorAddress(inputs_[i].name.c_str(), buffers_[i].ptr);
        }
        std::map<std::string, Tensor> out;
        for (size_t o = 0; o < outputs_.size(); ++o) {
            nvinfer1::Dims dims = context_->getTensorShape(outputs_[o].name.c_str());
            Tensor& t = out[outputs_[o].name];
            t.shape.assign(dims.d, dims.d + dims.nbDims);
            t.data.resize(static_cast<size_t>(element_count(t.shape)));
            DeviceBuffer& b = buffers_[inputs_.size() + o];
            b.reserve(std::max<size_t>(t.data.size() * sizeof(float), 1));
            context_->setTensorAddress(outputs_[o].name.c_str(), b.ptr);
        }
        if (!context_->enqueueV3(stream_)) fail(FE_ERR_BACKEND, "TensorRT inference failed: " + first_line(logger_.last()));
        for (size_t o = 0; o < outputs_.size(); ++o) {
            Tensor& t = out[outputs_[o].name];
            cuda_check(cudaMemcpyAsync(t.data.data(), buffers_[inputs_.size() + o].ptr, t.data.size() * sizeof(float),
                                       cudaMemcpyDeviceToHost, stream_),
                       "copy to host");
        }
        cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
        return out;
    }

private:
    Logger logger_;  // first: outlives every TensorRT object below
    std::unique_ptr<nvinfer1::IRuntime> runtime_;
    std::unique_ptr<nvinfer1::ICudaEngine> engine_;
    std::unique_ptr<nvinfer1::IExecutionContext> context_;
    cudaStream_t stream_ = nullptr;
    int device_ = 0;
    int64_t max_batch_ = 0;
    std::string metadata_;
    std::vector<TensorInfo> inputs_, outputs_;
    std::vector<DeviceBuffer> buffers_;
    std::mutex lock_;
};

}  // namespace

std::unique_ptr<Backend> make_tensorrt(const std::string& path, const std::string& device, const Options& options) {
    return std::make_unique<TensorRTBackend>(path, device, options);
}

}  // namespace fei
