/*
 * fer_edge.h - the stable C API of libfer_edge: facial expression recognition for embedded programs.
 *
 * The same artifacts, metadata and behaviour as the Python package `fer_edge`: open a model
 * artifact (.onnx, OpenVINO .xml, TensorRT .engine/.plan) on a backend, classify BGR face crops, or
 * run the whole live pipeline (BlazeFace detection, alignment to the model's face template, batched
 * classification, IoU tracking, EMA + hysteresis smoothing) on BGR frames.
 *
 * CONVENTIONS (they hold for every function below)
 *  - Every call that can fail returns an fe_status; FE_OK (0) is success. On failure the message
 *    is kept for the calling thread (fe_last_error()) and, for calls on a handle, on that handle
 *    too (fe_model_last_error(), fe_pipeline_last_error()). Messages are one line saying what was
 *    wrong and what to do. No C++ exception ever leaves the library.
 *  - Handles are opaque. Each fe_X_create/open has one fe_X_free; free functions accept NULL.
 *  - Ownership: pointers the library returns (strings, result structs, arrays) belong to the handle
 *    they came from and stay valid until the documented invalidating call or the handle's free.
 *    The caller never frees them. Pointers the caller passes in (paths, images) are only read during
 *    the call; the library keeps no reference to them.
 *  - Options grow without breaking the ABI: they are key/value pairs on an fe_options handle
 *    (fe_options_set). Unknown keys are refused by the function that reads them, with a message.
 *  - Result structs (fe_face) may gain fields at their END in later minor versions: read them
 *    through the pointers the accessors return, never as arrays of sizeof(fe_face).
 *  - Threads: an fe_model may be used from several threads at once (predict calls are independent).
 *    An fe_pipeline holds per-video state (tracks): use one per video stream, from one thread at a
 *    time; several pipelines may share one model. fe_options is not thread-safe while being set.
 *
 * ABI: symbols carry the version node FER_EDGE_1 (see fe_abi_version()). Additions keep the node
 * compatible; a break would bump FE_ABI_VERSION and the library's SONAME.
 */
#ifndef FER_EDGE_H
#define FER_EDGE_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(FE_BUILDING_LIBRARY)
#    define FE_API __declspec(dllexport)
#  elif defined(FE_STATIC)
#    define FE_API
#  else
#    define FE_API __declspec(dllimport)
#  endif
#else
#  define FE_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define FE_ABI_VERSION 1

typedef enum fe_status {
    FE_OK = 0,
    FE_ERR_INVALID_ARGUMENT = 1, /* NULL pointer, bad size, stride, option value ... */
    FE_ERR_NOT_FOUND = 2,        /* a file that does not exist or cannot be read */
    FE_ERR_BAD_ARTIFACT = 3,     /* corrupt model file, missing or damaged fer-edge metadata */
    FE_ERR_UNSUPPORTED = 4,      /* backend not built in, device not present, wrong model kind */
    FE_ERR_BACKEND = 5,          /* the inference engine failed while running */
    FE_ERR_OUT_OF_MEMORY = 6,
    FE_ERR_INTERNAL = 7          /* a bug: please report it with the message */
} fe_status;

/* --- library ---------------------------------------------------------------------------------- */

/* Version of the library, e.g. "0.1.0" (static string). */
FE_API const char* fe_version(void);
/* FE_ABI_VERSION the library was built with; a program should check it equals its own. */
FE_API int fe_abi_version(void);
/* Name of a status code, e.g. "FE_ERR_NOT_FOUND" (static string). */
FE_API const char* fe_status_name(fe_status status);
/* Message of the last failed call on this thread ("" if none). Valid until this thread's next
 * failing call. */
FE_API const char* fe_last_error(void);
/* 1 if the backend ("openvino", "tensorrt", "onnxruntime") was compiled in, else 0. */
FE_API int fe_backend_available(const char* backend);

/* --- options (key/value, values as text) -------------------------------------------------------- */

typedef struct fe_options fe_options;

FE_API fe_status fe_options_create(fe_options** out);
FE_API void fe_options_free(fe_options* options);
/* Set (or replace) one option; the key and value are copied. Which keys exist is listed in
 * docs/cpp.md; e.g. model: "precision"="f32", "performance_hint", "threads", "cache_dir",
 * "static_shapes"; pipeline: "ema",
 * "hysteresis", "iou_threshold", "max_missed", "min_face", "stride", "max_detect_side", "detector",
 * "detector_model", "score_threshold", "nms", "nms_iou", "max_faces", "tile_rows". */
FE_API fe_status fe_options_set(fe_options* options, const char* key, const char* value);
FE_API fe_status fe_options_set_int(fe_options* options, const char* key, int64_t value);
FE_API fe_status fe_options_set_double(fe_options* options, const char* key, double value);

/* --- images ------------------------------------------------------------------------------------- */

/* A view of caller-owned pixels: 8-bit BGR (channels 3) or gray (channels 1), rows `stride` bytes
 * apart (stride >= width * channels). Frozen in ABI 1. */
typedef struct fe_image {
    const uint8_t* data;
    int32_t width;
    int32_t height;
    int32_t stride;
    int32_t channels;
} fe_image;

/* --- models ------------------------------------------------------------------------------------- */

typedef struct fe_model fe_model;

/* Open an artifact. `backend`: "openvino", "tensorrt", "onnxruntime", or NULL to choose by the
 * file's suffix (.xml -> openvino, .engine/.plan -> tensorrt, .onnx -> onnxruntime if built, else
 * openvino). `device`: NULL or "auto", "cpu", "gpu", "cuda:0", an OpenVINO device name ...
 * `options` may be NULL and is only read during the call. A video model's frame_encoder (or
 * temporal_head) graph opens with its partner named in its metadata (both files side by side).
 * On failure *out is set to NULL. */
FE_API fe_status fe_model_open(const char* path, const char* backend, const char* device,
                               const fe_options* options, fe_model** out);
FE_API void fe_model_free(fe_model* model);
/* Message of the last failed call on this model ("" if none); valid until the next failing call on
 * it. With several threads on one model, read fe_last_error() (per thread) instead. */
FE_API const char* fe_model_last_error(const fe_model* model);

/* Facts from the metadata. Strings belong to the model. */
FE_API size_t fe_model_num_classes(const fe_model* model);
FE_API const char* fe_model_label(const fe_model* model, size_t index); /* NULL if out of range */
FE_API const char* fe_model_method(const fe_model* model);
FE_API const char* fe_model_backend(const fe_model* model);
FE_API const char* fe_model_metadata_json(const fe_model* model); /* the whole document */
/* 1 for a video (clip) model, which takes fe_model_predict_clips and the pipeline, else 0. */
FE_API int fe_model_is_video(const fe_model* model);
/* Frames per clip of a video model, 0 for an image model. */
FE_API int fe_model_clip_length(const fe_model* model);

typedef struct fe_prediction fe_prediction;

/* Classify `count` BGR (or gray) face crops in one batch. Crops of any size are resized as the
 * model's metadata says. *out receives a new result the caller frees with fe_prediction_free.
 * count 0 gives an empty result. */
FE_API fe_status fe_model_predict(fe_model* model, const fe_image* crops, size_t count, fe_prediction** out);
/* Video models: `num_clips` clips of fe_model_clip_length() crops each, laid out clip after clip in
 * `frames`. */
FE_API fe_status fe_model_predict_clips(fe_model* model, const fe_image* frames, size_t num_clips,
                                        fe_prediction** out);

FE_API void fe_prediction_free(fe_prediction* prediction);
FE_API size_t fe_prediction_count(const fe_prediction* prediction);
FE_API size_t fe_prediction_num_classes(const fe_prediction* prediction);
/* Probabilities of row `index` (num_classes floats), NULL if out of range. */
FE_API const float* fe_prediction_probs(const fe_prediction* prediction, size_t index);
/* The primary output before postprocessing (logits, evidence ...), NULL if out of range. */
FE_API const float* fe_prediction_raw(const fe_prediction* prediction, size_t index);
/* argmax of the probabilities, -1 if out of range. */
FE_API int32_t fe_prediction_label(const fe_prediction* prediction, size_t index);
/* 1 and *out set where the method gives an uncertainty (evidential models), else 0. */
FE_API int fe_prediction_uncertainty(const fe_prediction* prediction, size_t index, float* out);

/* --- pipeline ----------------------------------------------------------------------------------- */

typedef struct fe_pipeline fe_pipeline;

/* One face in one frame. Pointers belong to the pipeline and are valid until its next
 * fe_pipeline_process / fe_pipeline_reset / fe_pipeline_free. */
typedef struct fe_face {
    float box[4];            /* x1, y1, x2, y2 in frame pixels */
    float keypoints[12];     /* 6 (x, y): right eye, left eye, nose tip, mouth centre, right ear, left ear */
    float score;             /* detector confidence */
    int64_t track_id;        /* stable across frames, never reused */
    int32_t label;           /* stable (smoothed, hysteresis) label index; -1 while a clip warms up */
    const char* label_name;  /* its name; "warming up n/T" for video models before a clip */
    float confidence;        /* smoothed probability of `label` (0 while warming up) */
    int32_t raw_label;       /* argmax of this frame's probabilities, -1 while warming up */
    int32_t num_classes;
    const float* probs;          /* this frame's (video: latest clip's) probabilities, NULL while warming up */
    const float* smoothed_probs; /* NULL while warming up */
    int32_t has_uncertainty;
    float uncertainty;
    int32_t clip_length;     /* video models: frames per clip; 0 for image models */
    int32_t clip_frames;     /* video models: frames of this track in its buffer */
    int32_t clip_new;        /* video models: 1 if a new clip prediction was made at this frame */
} fe_face;

/* A pipeline on `model` (which it keeps a reference to: the caller may free the model at once).
 * A video model runs as its split pair with per-track clip buffers; a monolithic clip graph is
 * swapped for the frame_encoder/temporal_head pair its metadata names. The BlazeFace model is
 * looked for in $FER_EDGE_ASSETS, then the install's share/fer_edge (option "detector_model"
 * overrides). `options` may be NULL; see fe_options_set for keys. */
FE_API fe_status fe_pipeline_create(fe_model* model, const fe_options* options, fe_pipeline** out);
FE_API void fe_pipeline_free(fe_pipeline* pipeline);
FE_API const char* fe_pipeline_last_error(const fe_pipeline* pipeline);
/* Process the next frame of the stream (BGR, channels 3). *num_faces receives the face count. */
FE_API fe_status fe_pipeline_process(fe_pipeline* pipeline, const fe_image* frame, size_t* num_faces);
/* Face `index` of the last processed frame, NULL if out of range. */
FE_API const fe_face* fe_pipeline_face(const fe_pipeline* pipeline, size_t index);
/* Forget tracks, smoothing and clip buffers (the next frame is unrelated); timings are kept. */
FE_API fe_status fe_pipeline_reset(fe_pipeline* pipeline);
/* Seconds spent in a stage ("detect", "align", "classify", "track_smooth", or "total") over all
 * frames processed, and the number of frames; -1 for an unknown stage. */
FE_API double fe_pipeline_stage_seconds(const fe_pipeline* pipeline, const char* stage);
FE_API uint64_t fe_pipeline_frames(const fe_pipeline* pipeline);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FER_EDGE_H */
