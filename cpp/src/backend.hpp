// The one interface every inference engine implements: load, describe, run. A backend knows
// nothing about faces, labels or preprocessing (Model adds those, identically for every engine).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "options.hpp"

namespace fei {

struct TensorInfo {
    std::string name;
    std::vector<int64_t> shape;  // -1 for a free dimension
};

// A float32 tensor owned by whoever holds it.
struct Tensor {
    std::vector<int64_t> shape;
    std::vector<float> data;
    int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
    int64_t row_size() const { return rows() ? static_cast<int64_t>(data.size()) / rows() : 0; }
};

// A read-only view of caller-owned float32 input.
struct TensorView {
    std::vector<int64_t> shape;
    const float* data = nullptr;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;
    virtual std::string device() const = 0;
    virtual const std::vector<TensorInfo>& inputs() const = 0;
    virtual const std::vector<TensorInfo>& outputs() const = 0;
    // The fer-edge metadata JSON in (or beside) the artifact, "" if it has none.
    virtual std::string metadata_json() const = 0;
    // Run the graph on named inputs; every output by name. Thread-safe unless a backend says otherwise.
    virtual std::map<std::string, Tensor> run(const std::map<std::string, TensorView>& feeds) = 0;
    // The largest batch a run takes (0: no limit), e.g. a TensorRT profile's maximum.
    virtual int64_t max_batch() const { return 0; }
};

// The model options each backend reads (checked by open_backend).
extern const char* const kBackendOptionKeys[];

// Open `path` on `backend` ("" = by suffix) and `device` ("" = auto). Errors: FE_ERR_NOT_FOUND,
// FE_ERR_UNSUPPORTED (backend not built), FE_ERR_BAD_ARTIFACT.
std::unique_ptr<Backend> open_backend(const std::string& path, const std::string& backend, const std::string& device,
                                      const Options& options);
bool backend_available(const std::string& name);

// Factories of the backend files (defined only where the engine is compiled in).
std::unique_ptr<Backend> make_openvino(const std::string& path, const std::string& device, const Options& options);
std::unique_ptr<Backend> make_tensorrt(const std::string& path, const std::string& device, const Options& options);
std::unique_ptr<Backend> make_onnxruntime(const std::string& path, const std::string& device, const Options& options);

// Helpers shared by backends.
std::string read_sidecar(const std::string& artifact);  // "<artifact>.json" contents, "" if absent
int64_t element_count(const std::vector<int64_t>& shape);

}  // namespace fei
