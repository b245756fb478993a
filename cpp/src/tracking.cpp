// Greedy IoU tracking and per-track EMA + hysteresis smoothing (vision/tracking.py, smoothing.py).
#include <algorithm>
#include <set>

#include "vision.hpp"

namespace fei {

std::vector<std::shared_ptr<Track>> IoUTracker::update(const std::vector<std::array<float, 4>>& boxes) {
    std::vector<std::shared_ptr<Track>> assigned(boxes.size());
    if (!tracks_.empty() && !boxes.empty()) {
        struct Pair {
            size_t t, d;
            double iou;
        };
        std::vector<Pair> pairs;  // row-major like np.argwhere, then stably sorted by overlap
        for (size_t ti = 0; ti < tracks_.size(); ++ti)
            for (size_t di = 0; di < boxes.size(); ++di) {
                double v = iou(tracks_[ti]->box, boxes[di]);
                if (v >= iou_threshold_) pairs.push_back({ti, di, v});
            }
        std::stable_sort(pairs.begin(), pairs.end(), [](const Pair& x, const Pair& y) { return x.iou > y.iou; });
        std::set<size_t> used_t, used_d;
        for (const auto& p : pairs) {
            if (used_t.count(p.t) || used_d.count(p.d)) continue;
            used_t.insert(p.t);
            used_d.insert(p.d);
            assigned[p.d] = tracks_[p.t];
        }
    }
    std::set<const Track*> matched;
    for (const auto& t : assigned)
        if (t) matched.insert(t.get());
    for (auto& t : tracks_) {
        t->age += 1;
        if (!matched.count(t.get())) t->missed += 1;
    }
    for (size_t di = 0; di < boxes.size(); ++di) {
        if (!assigned[di]) {
            auto t = std::make_shared<Track>();
            t->id = next_id_++;
            t->box = boxes[di];
            tracks_.push_back(t);
            assigned[di] = t;
        } else {
            assigned[di]->box = boxes[di];
            assigned[di]->hits += 1;
            assigned[di]->missed = 0;
        }
    }
    tracks_.erase(std::remove_if(tracks_.begin(), tracks_.end(),
                                 [&](const std::shared_ptr<Track>& t) { return t->missed > max_missed_; }),
                  tracks_.end());
    return assigned;
}

int Smoother::update(const float* p, size_t n) {
    if (probs_.size() != n) {
        probs_.assign(p, p + n);
    } else {
        const float keep = static_cast<float>(ema_), take = static_cast<float>(1.0 - ema_);
        for (size_t i = 0; i < n; ++i) probs_[i] = keep * probs_[i] + take * p[i];
    }
    const int best = static_cast<int>(std::max_element(probs_.begin(), probs_.end()) - probs_.begin());
    if (label_ < 0 || label_ >= static_cast<int>(n)) label_ = best;
    else if (best != label_ && probs_[best] > probs_[label_] + static_cast<float>(hysteresis_)) label_ = best;
    return label_;
}

}  // namespace fei
