#include "options.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "error.hpp"

namespace fei {

std::string first_line(const std::string& text) {
    std::string line = text.substr(0, text.find('\n'));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    return line.size() > 300 ? line.substr(0, 300) + "..." : line;
}

std::string Options::text(const std::string& key, const std::string& fallback) const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
}

int64_t Options::integer(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const {
    auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    const char* s = it->second.c_str();
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        fail(FE_ERR_INVALID_ARGUMENT, "option " + key + " must be a whole number from " + std::to_string(lo) +
                                          " to " + std::to_string(hi) + ", got '" + it->second + "'");
    return v;
}

double Options::real(const std::string& key, double fallback, double lo, double hi) const {
    auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    const char* s = it->second.c_str();
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !std::isfinite(v) || v < lo || v > hi)
        fail(FE_ERR_INVALID_ARGUMENT, "option " + key + " must be a number from " + std::to_string(lo) + " to " +
                                          std::to_string(hi) + ", got '" + it->second + "'");
    return v;
}

void Options::check_known(const std::set<std::string>& known, const std::string& what,
                          const std::set<std::string>& also) const {
    for (const auto& kv : values_) {
        if (known.count(kv.first) || also.count(kv.first)) continue;
        bool prefixed = false;
        for (const auto& k : also) prefixed |= !k.empty() && k.back() == '.' && kv.first.rfind(k, 0) == 0;
        if (prefixed) continue;
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        fail(FE_ERR_INVALID_ARGUMENT, "unknown option '" + kv.first + "' for " + what + "; known: " + list);
    }
}

Options Options::with_prefix(const std::string& prefix) const {
    Options out;
    for (const auto& kv : values_)
        if (kv.first.rfind(prefix, 0) == 0) out.set(kv.first.substr(prefix.size()), kv.second);
    return out;
}

}  // namespace fei
