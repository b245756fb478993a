// BlazeFace: letterbox, batched windows (whole frame + tiles), anchor decoding, NMS. Every step
// mirrors vision/detectors.py, including where numpy computes in float32 and where in float64.
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include <opencv2/imgproc.hpp>

#include "error.hpp"
#include "numeric.hpp"
#include "vision.hpp"

namespace fei {

const BlazeFaceVariant& blazeface_variant(const std::string& name) {
    static const std::map<std::string, BlazeFaceVariant> variants{
        {"blazeface", {"blazeface", "blazeface.onnx", 128, {{16, 2}, {8, 6}}, "regressors", "classificators", 360}},
        {"blazeface_full",
         {"blazeface_full", "blazeface_full.onnx", 192, {{48, 1}}, "reshaped_regressor_face_4", "reshaped_classifier_face_4", 0}},
    };
    auto it = variants.find(name);
    if (it == variants.end())
        fail(FE_ERR_INVALID_ARGUMENT, "unknown face detector '" + name + "'; choose blazeface or blazeface_full");
    return it->second;
}

BlazeFace::BlazeFace(std::unique_ptr<Backend> engine, DetectorSettings settings)
    : engine_(std::move(engine)), settings_(std::move(settings)), variant_(blazeface_variant(settings_.variant)) {
    for (const auto& g : variant_.grids) {
        const int grid = g.first;
        for (int iy = 0; iy < grid; ++iy)
            for (int ix = 0; ix < grid; ++ix)
                for (int k = 0; k < g.second; ++k) {
                    anchors_.push_back(static_cast<float>((ix + 0.5) / grid));
                    anchors_.push_back(static_cast<float>((iy + 0.5) / grid));
                }
    }
    bool have_reg = false, have_cls = false;
    for (const auto& o : engine_->outputs()) {
        have_reg |= o.name == variant_.regressors;
        have_cls |= o.name == variant_.classificators;
    }
    if (!have_reg || !have_cls)
        fail(FE_ERR_BAD_ARTIFACT, "the face detector model has no outputs '" + variant_.regressors + "' and '" +
                                      variant_.classificators + "': it is not MediaPipe " + variant_.name);
}

std::vector<Detection> BlazeFace::operator()(const cv::Mat& frame, int max_side) const {
    const int h = frame.rows, w = frame.cols;
    if (max_side <= 0 || std::max(h, w) <= max_side) return detect(frame);
    const double k = static_cast<double>(max_side) / std::max(h, w);
    cv::Mat small;
    cv::resize(frame, small, cv::Size(static_cast<int>(std::max(1LL, round_half_even(w * k))),
                                      static_cast<int>(std::max(1LL, round_half_even(h * k)))),
               0, 0, cv::INTER_AREA);
    const float sx = static_cast<float>(static_cast<double>(w) / small.cols);
    const float sy = static_cast<float>(static_cast<double>(h) / small.rows);
    std::vector<Detection> faces = detect(small);
    for (auto& d : faces) {
        for (int i = 0; i < 4; ++i) d.box[i] *= (i % 2 ? sy : sx);
        for (int i = 0; i < 12; ++i) d.keypoints[i] *= (i % 2 ? sy : sx);
    }
    return faces;
}

std::vector<std::array<int, 3>> BlazeFace::tiles(int h, int w) const {
    int rows = settings_.tile_rows;
    if (rows < 0) {
        const int px = variant_.tile_px;
        rows = (px && std::min(h, w) >= 1.5 * px) ? static_cast<int>(round_half_even(static_cast<double>(std::min(h, w)) / px)) : 0;
    }
    if (rows < 2) return {};
    const int side = static_cast<int>(std::ceil(std::min(h, w) / (rows - (rows - 1) * 0.25)));
    const int step = std::max(1, static_cast<int>(side * 0.75));
    auto starts = [&](int length) {
        std::vector<int> pos;
        for (int p = 0; p <= std::max(length - side, 0); p += step) pos.push_back(p);
        if (pos.back() + side < length) pos.push_back(length - side);
        return pos;
    };
    std::vector<std::array<int, 3>> out;
    for (int y : starts(h))
        for (int x : starts(w)) out.push_back({x, y, side});
    return out;
}

namespace {

struct Letterbox {
    double scale;
    float left, top;
};

// Window -> S x S RGB in [-1, 1] at `dst` (NHWC), keeping the aspect ratio (black bars).
Letterbox letterbox(const cv::Mat& window, int size, float* dst) {
    const int h = window.rows, w = window.cols;
    const double scale = static_cast<double>(size) / std::max(h, w);
    const int nh = static_cast<int>(std::max(1LL, round_half_even(h * scale)));
    const int nw = static_cast<int>(std::max(1LL, round_half_even(w * scale)));
    cv::Mat resized;
    cv::resize(window, resized, cv::Size(nw, nh), 0, 0, scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    const int top = (size - nh) / 2, left = (size - nw) / 2;
    const float k = static_cast<float>(2.0 / 255.0);
    std::fill(dst, dst + static_cast<size_t>(size) * size * 3, -1.0f);  // black: 0 * k - 1
    for (int y = 0; y < nh; ++y) {
        const uint8_t* row = resized.ptr<uint8_t>(y);
        float* out = dst + (static_cast<size_t>(top + y) * size + left) * 3;
        for (int x = 0; x < nw; ++x) {
            out[3 * x + 0] = static_cast<float>(row[3 * x + 2]) * k - 1.0f;  // BGR -> RGB
            out[3 * x + 1] = static_cast<float>(row[3 * x + 1]) * k - 1.0f;
            out[3 * x + 2] = static_cast<float>(row[3 * x + 0]) * k - 1.0f;
        }
    }
    return {scale, static_cast<float>(left), static_cast<float>(top)};
}

}  // namespace

std::vector<Detection> BlazeFace::detect(const cv::Mat& frame) const {
    const int h = frame.rows, w = frame.cols, S = variant_.input;
    const auto tile_list = tiles(h, w);
    // shrink once so each tile is about the model's input size
    cv::Mat image = frame;
    double fx = 1.0, fy = 1.0;
    if (!tile_list.empty() && tile_list[0][2] > S) {
        const double k = static_cast<double>(S) / tile_list[0][2];
        cv::resize(frame, image, cv::Size(static_cast<int>(std::max(1LL, round_half_even(w * k))),
                                          static_cast<int>(std::max(1LL, round_half_even(h * k)))),
                   0, 0, cv::INTER_AREA);
        fx = static_cast<double>(image.cols) / w;
        fy = static_cast<double>(image.rows) / h;
    }
    struct Window {
        int x0, y0, side;  // side 0: the whole frame
        Letterbox box;
        int xs, ys;
    };
    std::vector<Window> windows{{0, 0, 0, {}, 0, 0}};
    for (const auto& t : tile_list) windows.push_back({t[0], t[1], t[2], {}, 0, 0});
    const size_t per = static_cast<size_t>(S) * S * 3;
    std::vector<float> batch(per * windows.size());
    for (size_t i = 0; i < windows.size(); ++i) {
        Window& win = windows[i];
        cv::Mat view = image;
        if (win.side) {
            win.xs = static_cast<int>(round_half_even(win.x0 * fx));
            win.ys = static_cast<int>(round_half_even(win.y0 * fy));
            // numpy slicing clamps to the image
            const int x1 = std::min(image.cols, win.xs + static_cast<int>(round_half_even(win.side * fx)));
            const int y1 = std::min(image.rows, win.ys + static_cast<int>(round_half_even(win.side * fy)));
            view = image(cv::Range(std::min(win.ys, image.rows), y1), cv::Range(std::min(win.xs, image.cols), x1));
        }
        if (view.empty()) fail(FE_ERR_INTERNAL, "an empty detector window");
        win.box = letterbox(view, S, batch.data() + i * per);
    }
    std::map<std::string, Tensor> outs;
    outs = engine_->run({{engine_->inputs()[0].name,
                          TensorView{{static_cast<int64_t>(windows.size()), S, S, 3}, batch.data()}}});
    const Tensor& reg = outs.at(variant_.regressors);
    const Tensor& cls = outs.at(variant_.classificators);
    const size_t anchors = anchors_.size() / 2;
    if (reg.data.size() != windows.size() * anchors * 16 || cls.data.size() != windows.size() * anchors)
        fail(FE_ERR_BAD_ARTIFACT, "the face detector's outputs do not have the sizes of MediaPipe " + variant_.name);
    const float to_fx = static_cast<float>(1.0 / fx), to_fy = static_cast<float>(1.0 / fy);
    const float input = static_cast<float>(S);
    std::vector<Detection> found;
    for (size_t wi = 0; wi < windows.size(); ++wi) {
        const Window& win = windows[wi];
        const float scale = static_cast<float>(win.box.scale);
        const float ox = static_cast<float>(win.xs), oy = static_cast<float>(win.ys);
        for (size_t a = 0; a < anchors; ++a) {
            double logit = std::min(100.0, std::max(-100.0, static_cast<double>(cls.data[wi * anchors + a])));
            const float score = static_cast<float>(1.0 / (1.0 + std::exp(-logit)));
            if (!(score >= settings_.score_threshold)) continue;
            const float* r = reg.data.data() + (wi * anchors + a) * 16;
            const float ax = anchors_[2 * a], ay = anchors_[2 * a + 1];
            const float cx = r[0] / input + ax, cy = r[1] / input + ay;
            const float hw = r[2] / input / 2.0f, hh = r[3] / input / 2.0f;
            Detection d;
            d.score = score;
            const float box01[4] = {cx - hw, cy - hh, cx + hw, cy + hh};
            // input [0, 1] -> pixels of the shrunk image (undo letterbox, add window offset) -> frame pixels
            for (int i = 0; i < 4; ++i) {
                const bool y = i % 2;
                d.box[i] = ((box01[i] * input - (y ? win.box.top : win.box.left)) / scale + (y ? oy : ox)) * (y ? to_fy : to_fx);
            }
            for (int k = 0; k < 6; ++k)
                for (int c = 0; c < 2; ++c) {
                    const float p = r[4 + 2 * k + c] / input + (c ? ay : ax);
                    d.keypoints[2 * k + c] = ((p * input - (c ? win.box.top : win.box.left)) / scale + (c ? oy : ox)) * (c ? to_fy : to_fx);
                }
            if (win.side) {
                // a face cut by an inner tile edge is found whole in the overlapping neighbour: drop the part
                const double margin = 0.02 * win.side;
                const int x0 = win.x0, y0 = win.y0, side = win.side;
                const bool inner = (x0 > 0 && d.box[0] < static_cast<float>(x0 + margin)) ||
                                   (y0 > 0 && d.box[1] < static_cast<float>(y0 + margin)) ||
                                   (x0 + side < w && d.box[2] > static_cast<float>(x0 + side - margin)) ||
                                   (y0 + side < h && d.box[3] > static_cast<float>(y0 + side - margin));
                if (inner) continue;
            }
            found.push_back(d);
        }
    }
    found = non_max_suppression(std::move(found), settings_.iou_threshold, settings_.weighted);
    if (settings_.max_faces >= 0 && found.size() > static_cast<size_t>(settings_.max_faces)) found.resize(settings_.max_faces);
    std::vector<Detection> out;
    for (auto& d : found) {
        d.box[0] = std::min(std::max(d.box[0], 0.f), static_cast<float>(w));
        d.box[2] = std::min(std::max(d.box[2], 0.f), static_cast<float>(w));
        d.box[1] = std::min(std::max(d.box[1], 0.f), static_cast<float>(h));
        d.box[3] = std::min(std::max(d.box[3], 0.f), static_cast<float>(h));
        if (d.box[2] - d.box[0] > 1 && d.box[3] - d.box[1] > 1) out.push_back(d);
    }
    return out;
}

double iou(const std::array<float, 4>& a, const std::array<float, 4>& b) {
    const double x1 = std::max<double>(a[0], b[0]), y1 = std::max<double>(a[1], b[1]);
    const double x2 = std::min<double>(a[2], b[2]), y2 = std::min<double>(a[3], b[3]);
    const double inter = std::max(x2 - x1, 0.0) * std::max(y2 - y1, 0.0);
    const double area_a = (static_cast<double>(a[2]) - a[0]) * (static_cast<double>(a[3]) - a[1]);
    const double area_b = (static_cast<double>(b[2]) - b[0]) * (static_cast<double>(b[3]) - b[1]);
    const double uni = area_a + area_b - inter;
    return uni > 0 ? inter / std::max(uni, 1e-12) : 0.0;
}

std::vector<Detection> non_max_suppression(std::vector<Detection> faces, double iou_threshold, bool weighted) {
    std::stable_sort(faces.begin(), faces.end(), [](const Detection& a, const Detection& b) { return a.score > b.score; });
    std::vector<Detection> kept;
    std::vector<size_t> remaining(faces.size());
    std::iota(remaining.begin(), remaining.end(), 0);
    while (!remaining.empty()) {
        const Detection& first = faces[remaining[0]];
        std::vector<size_t> cluster, rest;
        for (size_t idx : remaining) (iou(first.box, faces[idx].box) > iou_threshold ? cluster : rest).push_back(idx);
        if (cluster.empty()) {  // a degenerate box overlaps nothing, not even itself
            cluster.push_back(remaining[0]);
            rest.erase(std::find(rest.begin(), rest.end(), remaining[0]));
        }
        Detection out = first;
        if (weighted && cluster.size() > 1) {
            // numpy: (x * w).sum(0) / w.sum(), float32; rows summed in order, w.sum() pairwise
            const float wsum = pairwise_sum<float>([&](int64_t i) { return faces[cluster[i]].score; }, 0,
                                                   static_cast<int64_t>(cluster.size()));
            for (int j = 0; j < 4; ++j) {
                float s = 0.f;
                for (size_t idx : cluster) s += faces[idx].box[j] * faces[idx].score;
                out.box[j] = s / wsum;
            }
            for (int j = 0; j < 12; ++j) {
                float s = 0.f;
                for (size_t idx : cluster) s += faces[idx].keypoints[j] * faces[idx].score;
                out.keypoints[j] = s / wsum;
            }
        }
        kept.push_back(out);
        remaining = std::move(rest);
    }
    return kept;
}

}  // namespace fei
