#include "metadata.hpp"

#include <cmath>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "error.hpp"

namespace fei {
namespace {

using nlohmann::json;
const char* kFix = "re-export the artifact with `fer-edge export`";

struct Checker {
    std::string source;

    [[noreturn]] void bad(const std::string& where, const std::string& problem) const {
        fail(FE_ERR_BAD_ARTIFACT, source + ": " + where + " " + problem + "; " + kFix);
    }

    static std::string show(const json& v) {
        std::string s = v.dump();
        return s.size() > 60 ? s.substr(0, 57) + "..." : s;
    }

    static bool printable(const std::string& s) {
        for (unsigned char c : s)
            if (c < 0x20 || c == 0x7f) return false;
        return true;
    }

    std::string text(const std::string& where, const json& v, size_t limit = 256, bool empty = false) const {
        if (!v.is_string()) bad(where, "must be text, got " + show(v));
        std::string s = v.get<std::string>();
        bool blank = s.find_first_not_of(" \t") == std::string::npos;
        if (s.size() > limit || !printable(s) || (!empty && blank))
            bad(where, "must be " + std::string(empty ? "" : "non-empty ") + "printable text of at most " +
                           std::to_string(limit) + " characters, got " + show(v));
        return s;
    }

    std::string choice(const std::string& where, const json& v, const std::set<std::string>& choices) const {
        if (!v.is_string() || !choices.count(v.get<std::string>())) {
            std::string list;
            for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
            bad(where, "is " + show(v) + "; expected one of " + list);
        }
        return v.get<std::string>();
    }

    long long integer(const std::string& where, const json& v, long long lo, long long hi) const {
        if (!v.is_number_integer() || v.get<long long>() < lo || v.get<long long>() > hi)
            bad(where, "must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " +
                           show(v));
        return v.get<long long>();
    }

    double real(const std::string& where, const json& v, double lo, double hi) const {
        if (!v.is_number() || !(v.get<double>() >= lo && v.get<double>() <= hi))
            bad(where, "must be a number from " + json(lo).dump() + " to " + json(hi).dump() + ", got " + show(v));
        return v.get<double>();
    }

    std::vector<float> reals(const std::string& where, const json& v, int n, double lo, double hi) const {
        if (!v.is_array() || (v.size() != 1 && v.size() != static_cast<size_t>(n)))
            bad(where, "must list 1 or " + std::to_string(n) + " numbers (one per channel, or one for all), got " +
                           show(v));
        std::vector<float> out;
        for (const auto& x : v) out.push_back(static_cast<float>(real(where, x, lo, hi)));
        if (out.size() == 1) out.resize(n, out[0]);
        return out;
    }

    const json& object(const std::string& where, const json& v, const std::set<std::string>& known,
                       const std::vector<std::string>& required) const {
        if (!v.is_object()) bad(where, "must be a JSON object, got " + show(v));
        for (auto it = v.begin(); it != v.end(); ++it)
            if (!known.count(it.key()))
                fail(FE_ERR_BAD_ARTIFACT, source + ": " + where + " has an unknown field \"" + it.key() +
                                              "\"; upgrade fer-edge if a newer version wrote the artifact, else re-export it");
        for (const auto& k : required)
            if (!v.contains(k)) bad("metadata " + (where == "artifact metadata" ? "" : where.substr(9) + ".") + k,
                                    "is missing");
        return v;
    }

    std::string file_link(const std::string& where, const json& v) const {
        if (v.is_null()) return "";
        std::string s = text(where, v, 255, true);
        if (s.empty()) return s;
        if (s == "." || s == ".." || s.find('/') != std::string::npos || s.find('\\') != std::string::npos)
            bad(where, "must be the plain name of a file beside the artifact, got " + show(v));
        return s;
    }
};

InputSpec parse_input(const Checker& c, const json& d) {
    static const std::set<std::string> known{"name", "layout", "size", "color", "resize", "scale", "mean", "std",
                                             "frames", "sampling", "face_template", "face_scale"};
    c.object("metadata input", d, known, {"layout", "size", "color", "scale", "mean", "std"});
    InputSpec in;
    const std::string w = "metadata input.";
    if (d.contains("name")) in.name = c.text(w + "name", d["name"]);
    in.layout = c.choice(w + "layout", d["layout"], {"NCHW", "NTCHW"});
    in.color = c.choice(w + "color", d["color"], {"RGB", "BGR", "GRAY"});
    if (d.contains("resize")) in.resize = c.choice(w + "resize", d["resize"], {"nearest", "bilinear", "bicubic", "area"});
    const json& size = d["size"];
    if (!size.is_array() || size.size() != 2) c.bad(w + "size", "must be 2 whole numbers (height, width), got " + Checker::show(size));
    in.height = static_cast<int>(c.integer(w + "size", size[0], 1, 4096));
    in.width = static_cast<int>(c.integer(w + "size", size[1], 1, 4096));
    in.scale = c.real(w + "scale", d["scale"], 1e-9, 1e3);
    in.mean = c.reals(w + "mean", d["mean"], in.channels(), -1e4, 1e4);
    in.std = c.reals(w + "std", d["std"], in.channels(), 1e-6, 1e4);
    if (d.contains("frames") && !d["frames"].is_null()) in.frames = static_cast<int>(c.integer(w + "frames", d["frames"], 1, 1024));
    if (in.layout == "NTCHW" && in.frames == 0) c.bad(w + "frames", "must be given for a clip model (layout NTCHW)");
    if (d.contains("sampling") && !d["sampling"].is_null()) in.sampling = c.text(w + "sampling", d["sampling"]);
    if (d.contains("face_template")) {
        in.face_template = c.text(w + "face_template", d["face_template"]);
        if (!is_face_template(in.face_template))
            c.bad(w + "face_template", "is \"" + in.face_template + "\"; expected one of default, fer2013, rafdb");
    }
    if (d.contains("face_scale")) in.face_scale = c.real(w + "face_scale", d["face_scale"], 0.05, 20.0);
    return in;
}

OutputSpec parse_output(const Checker& c, const json& d) {
    c.object("metadata output", d, {"name", "kind", "extra"}, {"kind"});
    OutputSpec out;
    if (d.contains("name")) out.name = c.text("metadata output.name", d["name"]);
    out.kind = c.choice("metadata output.kind", d["kind"], {"logits", "probabilities", "evidence", "scaled_cosine", "features"});
    if (d.contains("extra")) {
        if (!d["extra"].is_array()) c.bad("metadata output.extra", "must be a list of output names, got " + Checker::show(d["extra"]));
        for (const auto& n : d["extra"]) out.extra.push_back(c.text("metadata output.extra[]", n));
    }
    return out;
}

}  // namespace

Metadata parse_metadata(const std::string& text, const std::string& source) {
    Checker c{source};
    json d;
    // keys seen in each open object: a key given twice is refused, as Python's reader does
    std::vector<std::set<std::string>> open_objects;
    std::string duplicate;
    auto track_keys = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::object_start) open_objects.emplace_back();
        else if (event == json::parse_event_t::object_end && !open_objects.empty()) open_objects.pop_back();
        else if (event == json::parse_event_t::key && !open_objects.empty() &&
                 !open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty())
            duplicate = parsed.get<std::string>();
        return true;
    };
    try {
        d = json::parse(text, track_keys);  // refuses bad UTF-8 and truncated text
    } catch (const json::exception& e) {
        fail(FE_ERR_BAD_ARTIFACT, source + ": artifact metadata is not valid JSON (" + first_line(e.what()) + "); " + kFix);
    }
    if (!duplicate.empty())
        fail(FE_ERR_BAD_ARTIFACT, source + ": artifact metadata is not valid JSON (key \"" + duplicate.substr(0, 60) +
                                      "\" is given twice); " + kFix);
    static const std::set<std::string> known{"schema", "method", "labels", "input", "output", "task", "graph", "precision",
                                             "licence", "source_sha256", "fer_edge_version", "schema_version", "extra"};
    if (!d.is_object()) c.bad("artifact metadata", "must be a JSON object, got " + Checker::show(d));
    if (d.contains("schema") && d["schema"] != "fer-edge/artifact")
        c.bad("artifact metadata", "has schema " + Checker::show(d["schema"]) + ", not \"fer-edge/artifact\": it is not fer-edge metadata");
    if (d.contains("schema_version") && d["schema_version"].is_number_integer() &&
        d["schema_version"].get<long long>() > kSchemaVersion)
        fail(FE_ERR_BAD_ARTIFACT, source + ": artifact metadata schema v" + d["schema_version"].dump() +
                                      " is newer than this libfer_edge understands (v1): upgrade libfer_edge");
    c.object("artifact metadata", d, known, {"method", "labels", "input", "output"});
    Metadata m;
    m.json = text;
    m.method = c.text("metadata method", d["method"]);
    if (d.contains("task")) m.task = c.choice("metadata task", d["task"], {"image", "video"});
    if (d.contains("graph")) m.graph = c.choice("metadata graph", d["graph"], {"classifier", "frame_encoder", "temporal_head"});
    if (d.contains("precision")) m.precision = c.choice("metadata precision", d["precision"], {"fp32", "fp16", "bf16", "int8", "mixed"});
    if (d.contains("schema_version")) c.integer("metadata schema_version", d["schema_version"], 1, kSchemaVersion);
    if (d.contains("licence")) c.text("metadata licence", d["licence"], 2000, true);
    const json& labels = d["labels"];
    if (!labels.is_array()) c.bad("metadata labels", "must be a list of class names, got " + Checker::show(labels));
    if (labels.size() > 10000) c.bad("metadata labels", "has more than 10000 names");
    std::set<std::string> seen;
    for (size_t i = 0; i < labels.size(); ++i) {
        std::string where = "metadata labels[" + std::to_string(i) + "]";
        std::string name = c.text(where, labels[i]);
        if (name.front() == ' ' || name.back() == ' ') c.bad(where, "must not have surrounding spaces");
        if (!seen.insert(name).second) c.bad("metadata labels", "names \"" + name + "\" twice; each class needs its own name");
        m.labels.push_back(name);
    }
    if (m.labels.empty() && m.graph != "frame_encoder") c.bad("metadata labels", "is empty");
    m.input = parse_input(c, d["input"]);
    m.output = parse_output(c, d["output"]);
    if (d.contains("extra")) {
        const json& extra = d["extra"];
        if (!extra.is_object()) c.bad("metadata extra", "must be a JSON object, got " + Checker::show(extra));
        if (extra.contains("frame_encoder")) m.frame_encoder_file = c.file_link("metadata extra.frame_encoder", extra["frame_encoder"]);
        if (extra.contains("temporal_head")) m.temporal_head_file = c.file_link("metadata extra.temporal_head", extra["temporal_head"]);
    }
    return m;
}

namespace {
// Same numbers as src/fer_edge/vision/align.py TEMPLATES: (x, y) of right eye, left eye, nose tip,
// mouth centre as fractions of the crop.
const std::map<std::string, std::array<float, 8>>& templates() {
    static const std::map<std::string, std::array<float, 8>> t{
        {"default", {0.342f, 0.462f, 0.658f, 0.460f, 0.500f, 0.640f, 0.501f, 0.824f}},
        {"fer2013", {0.312f, 0.390f, 0.688f, 0.390f, 0.500f, 0.595f, 0.500f, 0.774f}},
        {"rafdb", {0.335f, 0.400f, 0.665f, 0.400f, 0.500f, 0.560f, 0.500f, 0.720f}},
    };
    return t;
}
}  // namespace

bool is_face_template(const std::string& name) { return templates().count(name) != 0; }

const std::array<float, 8>& face_template(const std::string& name) {
    auto it = templates().find(name);
    if (it == templates().end()) fail(FE_ERR_BAD_ARTIFACT, "unknown face template '" + name + "'; known: default, fer2013, rafdb");
    return it->second;
}

}  // namespace fei
