#include "backend.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include "error.hpp"

namespace fei {

const char* const kBackendOptionKeys[] = {"precision", "performance_hint", "threads", "cache_dir", "static_shapes", nullptr};

namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::string suffix(const std::string& path) {
    size_t slash = path.find_last_of('/');
    size_t dot = path.find_last_of('.');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
    return lower(path.substr(dot));
}

std::string built_list() {
    std::string list;
    for (const char* b : {"openvino", "tensorrt", "onnxruntime"})
        if (backend_available(b)) list += (list.empty() ? "" : ", ") + std::string(b);
    return list.empty() ? "none" : list;
}

}  // namespace

bool backend_available(const std::string& name) {
#ifdef FE_HAVE_OPENVINO
    if (name == "openvino") return true;
#endif
#ifdef FE_HAVE_TENSORRT
    if (name == "tensorrt") return true;
#endif
#ifdef FE_HAVE_ONNXRUNTIME
    if (name == "onnxruntime") return true;
#endif
    (void)name;
    return false;
}

int64_t element_count(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

std::string read_sidecar(const std::string& artifact) {
    std::ifstream f(artifact + ".json", std::ios::binary);
    if (!f) return "";
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

std::unique_ptr<Backend> open_backend(const std::string& path, const std::string& backend, const std::string& device,
                                      const Options& options) {
    struct stat st {};
    if (path.empty() || stat(path.c_str(), &st) != 0)
        fail(FE_ERR_NOT_FOUND, "model file '" + path + "' does not exist; check the path");
    if (!S_ISREG(st.st_mode)) fail(FE_ERR_NOT_FOUND, "'" + path + "' is not a file; pass the model file itself");
    std::string name = lower(backend);
    std::string ext = suffix(path);
    if (name.empty()) {
        if (ext == ".xml") name = "openvino";
        else if (ext == ".engine" || ext == ".plan") name = "tensorrt";
        else if (ext == ".onnx") name = backend_available("onnxruntime") ? "onnxruntime" : "openvino";
        else
            fail(FE_ERR_UNSUPPORTED, "cannot tell the backend for '" + path +
                                         "' from its suffix (known: .onnx, .xml, .engine, .plan); pass a backend");
    }
    if (name != "openvino" && name != "tensorrt" && name != "onnxruntime")
        fail(FE_ERR_UNSUPPORTED, "unknown backend '" + backend + "'; choose one of openvino, tensorrt, onnxruntime");
    if (!backend_available(name))
        fail(FE_ERR_UNSUPPORTED, "the " + name + " backend is not built into this libfer_edge (built: " + built_list() +
                                     "); rebuild it where the engine's headers are found (docs/cpp.md)");
    std::set<std::string> known;
    for (const char* const* k = kBackendOptionKeys; *k; ++k) known.insert(*k);
    options.check_known(known, "opening a model");
#ifdef FE_HAVE_OPENVINO
    if (name == "openvino") return make_openvino(path, device, options);
#endif
#ifdef FE_HAVE_TENSORRT
    if (name == "tensorrt") return make_tensorrt(path, device, options);
#endif
#ifdef FE_HAVE_ONNXRUNTIME
    if (name == "onnxruntime") return make_onnxruntime(path, device, options);
#endif
    fail(FE_ERR_INTERNAL, "backend " + name + " is listed as built but has no factory");
}

}  // namespace fei
