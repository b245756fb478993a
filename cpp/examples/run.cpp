// run: the live pipeline on a video, camera or image with the C++ wrapper, printing JSON Lines like
// `fer-edge run --json -` (one record per frame with its faces).
//
//   fe_run MODEL SOURCE [--max-frames N] [--option key=value ...] [--model-option key=value ...]
//
// SOURCE: a video file, an image file, or a camera index (0, 1, ...).
#include <cctype>
#include <cstdio>
#include <iostream>
#include <string>

#include <fer_edge/fer_edge.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

namespace {

void print_floats(const fe::Model& model, const std::vector<std::string>& labels, const float* v) {
    std::printf("{");
    for (size_t k = 0; k < labels.size(); ++k) std::printf("%s\"%s\": %.4f", k ? ", " : "", labels[k].c_str(), v[k]);
    std::printf("}");
}

void print_face(const fe::Model& model, const std::vector<std::string>& labels, const fe_face& f) {
    std::printf("{\"track_id\": %lld, \"box\": [%.1f, %.1f, %.1f, %.1f], \"score\": %.4f, \"keypoints\": [",
                static_cast<long long>(f.track_id), f.box[0], f.box[1], f.box[2], f.box[3], f.score);
    for (int k = 0; k < 6; ++k) std::printf("%s[%.1f, %.1f]", k ? ", " : "", f.keypoints[2 * k], f.keypoints[2 * k + 1]);
    std::printf("]");
    if (f.clip_length)
        std::printf(", \"clip\": {\"frames\": %d, \"length\": %d, \"new\": %s, \"status\": \"%s\"}", f.clip_frames,
                    f.clip_length, f.clip_new ? "true" : "false", f.probs ? "ready" : f.label_name);
    if (!f.probs) {
        std::printf(", \"label\": null, \"confidence\": null}");
        return;
    }
    std::printf(", \"label\": \"%s\", \"confidence\": %.4f, \"raw_label\": \"%s\", \"probs\": ", f.label_name, f.confidence,
                labels[f.raw_label].c_str());
    print_floats(model, labels, f.probs);
    std::printf(", \"smoothed_probs\": ");
    print_floats(model, labels, f.smoothed_probs);
    if (f.has_uncertainty) std::printf(", \"uncertainty\": %.4f", f.uncertainty);
    std::printf("}");
}

bool is_image(const std::string& path) {
    std::string ext = path.substr(path.find_last_of('.') + 1);
    for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return ext == "jpg" || ext == "jpeg" || ext == "png" || ext == "bmp";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: " << argv[0] << " MODEL SOURCE [--max-frames N] [--option key=value ...] "
                     "[--model-option key=value ...]\n";
        return 2;
    }
    try {
        fe::Options options, model_options;
        long max_frames = -1;
        for (int i = 3; i + 1 < argc; i += 2) {
            std::string flag = argv[i], value = argv[i + 1];
            if (flag == "--max-frames") max_frames = std::stol(value);
            else if ((flag == "--option" || flag == "--model-option") && value.find('=') != std::string::npos)
                (flag == "--option" ? options : model_options)
                    .set(value.substr(0, value.find('=')), value.substr(value.find('=') + 1));
            else throw std::invalid_argument("unknown argument " + flag);
        }
        fe::Model model(argv[1], "", "", &model_options);
        fe::Pipeline pipeline(model, &options);
        const auto labels = model.labels();
        std::string source = argv[2];
        cv::VideoCapture capture;
        cv::Mat frame;
        bool single = is_image(source);
        if (single) {
            frame = cv::imread(source, cv::IMREAD_COLOR);
            if (frame.empty()) throw std::runtime_error("cannot read the image " + source);
        } else if (!source.empty() && std::isdigit(static_cast<unsigned char>(source[0])) && source.size() < 3) {
            capture.open(std::stoi(source));
        } else {
            capture.open(source);
        }
        if (!single && !capture.isOpened()) throw std::runtime_error("cannot open the video source " + source);
        const double fps = single ? 0.0 : capture.get(cv::CAP_PROP_FPS);
        for (long index = 0; max_frames < 0 || index < max_frames; ++index) {
            if (!single && !capture.read(frame)) break;
            if (!frame.isContinuous()) frame = frame.clone();
            auto faces = pipeline.process(fe::image_view(frame.data, frame.cols, frame.rows, 3, static_cast<int>(frame.step)));
            std::printf("{\"frame\": %ld, \"time\": %.4f, \"faces\": [", index, fps > 0 ? index / fps : 0.0);
            for (size_t i = 0; i < faces.size(); ++i) {
                if (i) std::printf(", ");
                print_face(model, labels, *faces[i]);
            }
            std::printf("]}\n");
            if (single) break;
        }
        std::fprintf(stderr, "%llu frames; ms per frame: detect %.1f, align %.1f, classify %.1f, track_smooth %.1f\n",
                     static_cast<unsigned long long>(pipeline.frames()),
                     1e3 * pipeline.stage_seconds("detect") / std::max<uint64_t>(pipeline.frames(), 1),
                     1e3 * pipeline.stage_seconds("align") / std::max<uint64_t>(pipeline.frames(), 1),
                     1e3 * pipeline.stage_seconds("classify") / std::max<uint64_t>(pipeline.frames(), 1),
                     1e3 * pipeline.stage_seconds("track_smooth") / std::max<uint64_t>(pipeline.frames(), 1));
    } catch (const fe::Error& e) {
        std::cerr << "fe_run: " << e.what() << " (" << fe_status_name(e.status()) << ")\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "fe_run: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
