// Alignment: a similarity transform from detector keypoints to the model's face template
// (vision/align.py), with the same float32 template arithmetic and float64 fit.
#include <opencv2/imgproc.hpp>

#include "error.hpp"
#include "metadata.hpp"
#include "vision.hpp"

namespace fei {

cv::Mat align_face(const cv::Mat& frame, const std::array<float, 12>& keypoints, int height, int width,
                   const std::string& face_template, double face_scale) {
    const auto& t = fei::face_template(face_template);
    // template_points: float32, centre = mean of the 4 points, zoomed out by face_scale around it
    float cx = 0.f, cy = 0.f;
    for (int i = 0; i < 4; ++i) {
        cx += t[2 * i];
        cy += t[2 * i + 1];
    }
    cx /= 4.f;
    cy /= 4.f;
    const float fs = static_cast<float>(face_scale);
    double dst[8], src[8];
    for (int i = 0; i < 4; ++i) {
        dst[2 * i] = static_cast<double>(((t[2 * i] - cx) / fs + cx) * static_cast<float>(width));
        dst[2 * i + 1] = static_cast<double>(((t[2 * i + 1] - cy) / fs + cy) * static_cast<float>(height));
        src[2 * i] = keypoints[2 * i];
        src[2 * i + 1] = keypoints[2 * i + 1];
    }
    // similarity_transform: closed-form least squares (Umeyama without reflection), float64
    double ms[2] = {0, 0}, md[2] = {0, 0};
    for (int i = 0; i < 4; ++i)
        for (int c = 0; c < 2; ++c) {
            ms[c] += src[2 * i + c];
            md[c] += dst[2 * i + c];
        }
    for (int c = 0; c < 2; ++c) {
        ms[c] /= 4;
        md[c] /= 4;
    }
    double s[8], d[8];
    for (int i = 0; i < 8; ++i) {
        s[i] = src[i] - ms[i % 2];
        d[i] = dst[i] - md[i % 2];
    }
    auto sum8 = [](const double* v) { return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])); };
    double sq[8], sd[8];
    for (int i = 0; i < 8; ++i) {
        sq[i] = s[i] * s[i];
        sd[i] = s[i] * d[i];
    }
    const double var = sum8(sq);
    if (var < 1e-9) fail(FE_ERR_INVALID_ARGUMENT, "face keypoints are degenerate (all at one point); cannot align this face");
    const double a = sum8(sd) / var;
    double cross = 0;
    for (int i = 0; i < 4; ++i) cross += s[2 * i] * d[2 * i + 1] - s[2 * i + 1] * d[2 * i];
    const double b = cross / var;
    const double tx = md[0] - (a * ms[0] + (-b) * ms[1]);
    const double ty = md[1] - (b * ms[0] + a * ms[1]);
    cv::Mat m = (cv::Mat_<float>(2, 3) << static_cast<float>(a), static_cast<float>(-b), static_cast<float>(tx),
                 static_cast<float>(b), static_cast<float>(a), static_cast<float>(ty));
    cv::Mat crop;
    cv::warpAffine(frame, crop, m, cv::Size(width, height), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    return crop;
}

}  // namespace fei
