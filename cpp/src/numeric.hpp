// Small numerics written to give the same floats as the numpy code they mirror (summation order,
// float32 vs float64 steps), so Python and C++ agree to the last bits where they can.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace fei {

// numpy's pairwise summation (umath loops: blocks of 8 partial sums up to 128 items, halves above).
template <typename T, typename Get>
T pairwise_sum(Get get, int64_t start, int64_t n) {
    if (n < 8) {
        T res = T(0);
        for (int64_t i = 0; i < n; ++i) res += get(start + i);
        return res;
    }
    if (n <= 128) {
        T r[8];
        for (int k = 0; k < 8; ++k) r[k] = get(start + k);
        int64_t i = 8;
        for (; i < n - (n % 8); i += 8)
            for (int k = 0; k < 8; ++k) r[k] += get(start + i + k);
        T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += get(start + i);
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum<T>(get, start, n2) + pairwise_sum<T>(get, start + n2, n - n2);
}

// postprocess.softmax on one row: float64 arithmetic, float32 result.
inline void softmax_row(const float* x, float* y, int64_t n) {
    double top = x[0];
    for (int64_t i = 1; i < n; ++i) top = std::max(top, static_cast<double>(x[i]));
    std::vector<double> z(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) z[i] = std::exp(static_cast<double>(x[i]) - top);
    double sum = pairwise_sum<double>([&](int64_t i) { return z[i]; }, 0, n);
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(z[i] / sum);
}

// postprocess.evidential on one row: expected probabilities alpha/S; returns the uncertainty K/S.
inline float evidential_row(const float* e, float* y, int64_t n) {
    double s = pairwise_sum<double>([&](int64_t i) { return static_cast<double>(e[i]) + 1.0; }, 0, n);
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>((static_cast<double>(e[i]) + 1.0) / s);
    return static_cast<float>(static_cast<double>(n) / s);
}

// Python's round(): half to even.
inline long long round_half_even(double v) { return static_cast<long long>(std::nearbyint(v)); }

}  // namespace fei
