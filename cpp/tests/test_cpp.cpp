// The C++ wrapper (RAII, moves, exceptions) and concurrent use: one model shared by several
// threads gives the same results as one thread; one pipeline per thread. Args: MODEL.onnx
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fer_edge/fer_edge.hpp>

static int failures = 0, checks = 0;
#define CHECK(cond)                                                                  \
    do {                                                                             \
        ++checks;                                                                    \
        if (!(cond)) {                                                               \
            ++failures;                                                              \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

static std::vector<uint8_t> pattern(int w, int h, int seed) {
    std::vector<uint8_t> px(static_cast<size_t>(w) * h * 3);
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>((i * (seed + 3) + seed * 17) & 255);
    return px;
}

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    const std::string path = argv[1];
    // exceptions carry the status and message
    try {
        fe::Model bad("/nonexistent.onnx");
        CHECK(false);
    } catch (const fe::Error& e) {
        CHECK(e.status() == FE_ERR_NOT_FOUND);
        CHECK(std::strstr(e.what(), "does not exist") != nullptr);
    }
    fe::Options opts;
    opts.set("precision", "f32").set("threads", 1);
    fe::Model model(path, "openvino", "cpu", &opts);
    CHECK(model.labels().size() == 7 && model.method() == "mini_xception");
    // move-only handles: the moved-from one is empty and freeing it is harmless
    fe::Model moved = std::move(model);
    CHECK(moved.get() != nullptr && model.get() == nullptr);
    model = std::move(moved);
    CHECK(model.get() != nullptr);

    std::vector<std::vector<uint8_t>> pixels;
    std::vector<fe_image> crops;
    for (int i = 0; i < 6; ++i) pixels.push_back(pattern(64 + i, 60, i));
    for (int i = 0; i < 6; ++i) crops.push_back(fe::image_view(pixels[i].data(), 64 + i, 60));
    fe::Prediction ref = model.predict(crops);
    CHECK(ref.size() == 6 && ref.num_classes() == 7);
    try {
        (void)ref[6];
        CHECK(false);
    } catch (const std::out_of_range&) {
    }
    try {
        std::vector<fe_image> broken{fe::image_view(nullptr, 10, 10)};
        model.predict(broken);
        CHECK(false);
    } catch (const fe::Error& e) {
        CHECK(e.status() == FE_ERR_INVALID_ARGUMENT);
    }

    // several threads on one model, each with its own batch sizes, all equal to the reference
    std::atomic<int> mismatches{0}, errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            try {
                for (int round = 0; round < 5; ++round) {
                    size_t i = static_cast<size_t>((t + round) % 6);
                    fe::Prediction p = model.predict({crops[i]});
                    fe::Result got = p[0], want = ref[i];
                    for (size_t k = 0; k < 7; ++k)
                        if (std::abs(got.probs[k] - want.probs[k]) > 1e-5f) ++mismatches;
                }
            } catch (const std::exception& e) {
                std::fprintf(stderr, "thread %d: %s\n", t, e.what());
                ++errors;
            }
        });
    for (auto& th : threads) th.join();
    CHECK(mismatches == 0 && errors == 0);

    // a pipeline per thread on one shared model
    threads.clear();
    std::vector<uint8_t> frame(320 * 240 * 3, 100);
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&] {
            try {
                fe::Pipeline pipe(model);
                for (int i = 0; i < 3; ++i) pipe.process(fe::image_view(frame.data(), 320, 240));
                if (pipe.frames() != 3) ++errors;
            } catch (const std::exception& e) {
                std::fprintf(stderr, "pipeline thread: %s\n", e.what());
                ++errors;
            }
        });
    for (auto& th : threads) th.join();
    CHECK(errors == 0);

    std::printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
