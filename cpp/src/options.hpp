// Key/value options (the ABI-stable way to configure models and pipelines), with typed reads that
// refuse bad values and keys nobody asked for.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace fei {

class Options {
public:
    void set(const std::string& key, const std::string& value) { values_[key] = value; }
    bool has(const std::string& key) const { return values_.count(key) != 0; }

    std::string text(const std::string& key, const std::string& fallback) const;
    int64_t integer(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const;
    double real(const std::string& key, double fallback, double lo, double hi) const;
    // Refuse keys outside `known` (and outside `also`), naming the first unknown one; `what` names the reader.
    void check_known(const std::set<std::string>& known, const std::string& what,
                     const std::set<std::string>& also = {}) const;
    // The options whose keys start with `prefix`, the prefix removed (e.g. "detector." for the detector's model).
    Options with_prefix(const std::string& prefix) const;

private:
    std::map<std::string, std::string> values_;
};

}  // namespace fei
