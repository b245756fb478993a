// The artifact metadata schema "fer-edge/artifact" v1, as src/fer_edge/metadata.py writes it: parsed
// with nlohmann::json and checked field by field, so a damaged artifact is one error line, never a
// silently wrong preprocessing.
#pragma once

#include <array>
#include <string>
#include <vector>

namespace fei {

struct InputSpec {
    std::string name = "input";
    std::string layout = "NCHW";  // NCHW (images) or NTCHW (clips)
    int height = 224, width = 224;
    std::string color = "RGB";    // RGB, BGR or GRAY
    std::string resize = "bilinear";
    double scale = 1.0 / 255.0;
    std::vector<float> mean{0.f, 0.f, 0.f};  // one per channel (a single value is repeated)
    std::vector<float> std{1.f, 1.f, 1.f};
    int frames = 0;               // clip length (0: none)
    std::string sampling;         // "" = none
    std::string face_template = "default";
    double face_scale = 1.0;
    int channels() const { return color == "GRAY" ? 1 : 3; }
};

struct OutputSpec {
    std::string name = "logits";
    std::string kind = "logits";  // logits, probabilities, evidence, scaled_cosine, features
    std::vector<std::string> extra;
};

struct Metadata {
    std::string method;
    std::vector<std::string> labels;
    InputSpec input;
    OutputSpec output;
    std::string task = "image";
    std::string graph = "classifier";  // classifier, frame_encoder, temporal_head
    std::string precision = "fp32";
    std::string frame_encoder_file, temporal_head_file;  // extra.frame_encoder / extra.temporal_head
    std::string json;  // the document as read
};

constexpr const char* kMetadataKey = "fer_edge";
constexpr int kSchemaVersion = 1;

// Parse and check the JSON document; `source` (a file name) starts every error message.
Metadata parse_metadata(const std::string& text, const std::string& source);

// Template keypoints (4 x (x, y), fractions of the crop) of a named face template (alignment).
const std::array<float, 8>& face_template(const std::string& name);
bool is_face_template(const std::string& name);

}  // namespace fei
