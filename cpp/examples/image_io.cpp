#include "image_io.h"

#include <cstdlib>
#include <cstring>

#include <opencv2/imgcodecs.hpp>

extern "C" uint8_t* read_bgr(const char* path, int* width, int* height) {
    cv::Mat img;
    try {
        img = cv::imread(path, cv::IMREAD_COLOR);
    } catch (...) {
        return nullptr;
    }
    if (img.empty()) return nullptr;
    const size_t bytes = img.total() * 3;
    uint8_t* out = static_cast<uint8_t*>(std::malloc(bytes));
    if (!out) return nullptr;
    cv::Mat dst(img.rows, img.cols, CV_8UC3, out);
    img.copyTo(dst);
    *width = img.cols;
    *height = img.rows;
    return out;
}
