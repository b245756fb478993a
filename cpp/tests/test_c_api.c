/* C API contract: status codes and messages for bad input (never a crash), handle lifetimes,
 * options, predict and the pipeline on synthetic pixels. Args: MODEL.onnx DETECTOR.onnx TMPDIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fer_edge/fer_edge.h>

static int failures = 0, checks = 0;
static const char* g_model_path = NULL;
#define CHECK(cond)                                                              \
    do {                                                                         \
        ++checks;                                                                \
        if (!(cond)) {                                                           \
            ++failures;                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)
/* a call fails with `status` and a non-empty message containing `part` */
#define CHECK_FAILS(call, status, part)                                               \
    do {                                                                              \
        fe_status s_ = (call);                                                        \
        ++checks;                                                                     \
        if (s_ != (status) || !strstr(fe_last_error(), (part)) || !*fe_last_error()) { \
            ++failures;                                                               \
            fprintf(stderr, "%s:%d: %s gave %s '%s', wanted %s with '%s'\n", __FILE__, __LINE__, #call, \
                    fe_status_name(s_), fe_last_error(), #status, part);              \
        }                                                                             \
    } while (0)

static void write_file(const char* path, const void* data, size_t n) {
    FILE* f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static void test_library(void) {
    CHECK(strcmp(fe_version(), "") != 0);
    CHECK(fe_abi_version() == FE_ABI_VERSION);
    CHECK(strcmp(fe_status_name(FE_ERR_NOT_FOUND), "FE_ERR_NOT_FOUND") == 0);
    CHECK(strcmp(fe_status_name((fe_status)99), "FE_ERR_UNKNOWN") == 0);
    CHECK(fe_backend_available("openvino") == 1);
    CHECK(fe_backend_available("nonsense") == 0);
    CHECK(fe_backend_available(NULL) == 0);
    /* free functions and getters accept NULL */
    fe_options_free(NULL);
    fe_model_free(NULL);
    fe_prediction_free(NULL);
    fe_pipeline_free(NULL);
    CHECK(fe_model_num_classes(NULL) == 0);
    CHECK(fe_model_label(NULL, 0) == NULL);
    CHECK(fe_prediction_probs(NULL, 0) == NULL);
    CHECK(fe_pipeline_face(NULL, 0) == NULL);
    CHECK(fe_pipeline_stage_seconds(NULL, "detect") < 0);
}

static void test_options(void) {
    fe_options* o = NULL;
    CHECK_FAILS(fe_options_create(NULL), FE_ERR_INVALID_ARGUMENT, "out is NULL");
    CHECK(fe_options_create(&o) == FE_OK && o);
    CHECK_FAILS(fe_options_set(NULL, "a", "b"), FE_ERR_INVALID_ARGUMENT, "options is NULL");
    CHECK_FAILS(fe_options_set(o, NULL, "b"), FE_ERR_INVALID_ARGUMENT, "key is NULL");
    CHECK_FAILS(fe_options_set(o, "a", NULL), FE_ERR_INVALID_ARGUMENT, "value is NULL");
    CHECK_FAILS(fe_options_set(o, "", "b"), FE_ERR_INVALID_ARGUMENT, "empty");
    CHECK(fe_options_set_int(o, "threads", 1) == FE_OK);
    CHECK(fe_options_set_double(o, "ema", 0.5) == FE_OK);
    fe_options_free(o);
}

static void test_open_errors(const char* model_path, const char* detector_path, const char* tmp) {
    fe_model* m = (fe_model*)1;
    char path[4096];
    CHECK_FAILS(fe_model_open(NULL, NULL, NULL, NULL, &m), FE_ERR_INVALID_ARGUMENT, "path is NULL");
    CHECK(m == NULL);
    CHECK_FAILS(fe_model_open(model_path, NULL, NULL, NULL, NULL), FE_ERR_INVALID_ARGUMENT, "out is NULL");
    CHECK_FAILS(fe_model_open("/nonexistent/model.onnx", NULL, NULL, NULL, &m), FE_ERR_NOT_FOUND, "does not exist");
    CHECK_FAILS(fe_model_open(tmp, NULL, NULL, NULL, &m), FE_ERR_NOT_FOUND, "not a file");
    CHECK_FAILS(fe_model_open(model_path, "caffe", NULL, NULL, &m), FE_ERR_UNSUPPORTED, "unknown backend");
    if (!fe_backend_available("tensorrt"))
        CHECK_FAILS(fe_model_open(model_path, "tensorrt", NULL, NULL, &m), FE_ERR_UNSUPPORTED, "not built");
    CHECK_FAILS(fe_model_open(model_path, "openvino", "tpu", NULL, &m), FE_ERR_UNSUPPORTED, "not available");
    /* garbage, a truncated model, a model without metadata */
    snprintf(path, sizeof path, "%s/garbage.onnx", tmp);
    write_file(path, "this is not a model", 19);
    CHECK_FAILS(fe_model_open(path, NULL, NULL, NULL, &m), FE_ERR_BAD_ARTIFACT, "cannot read");
    {
        FILE* f = fopen(model_path, "rb");
        char buf[2000];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f) fclose(f);
        snprintf(path, sizeof path, "%s/truncated.onnx", tmp);
        write_file(path, buf, n);
        CHECK_FAILS(fe_model_open(path, NULL, NULL, NULL, &m), FE_ERR_BAD_ARTIFACT, "truncated.onnx");
    }
    CHECK_FAILS(fe_model_open(detector_path, NULL, NULL, NULL, &m), FE_ERR_BAD_ARTIFACT, "no fer-edge metadata");
    snprintf(path, sizeof path, "%s/model.tflite", tmp);
    write_file(path, "x", 1);
    CHECK_FAILS(fe_model_open(path, NULL, NULL, NULL, &m), FE_ERR_UNSUPPORTED, "suffix");
    {
        fe_options* o = NULL;
        fe_options_create(&o);
        fe_options_set(o, "precision", "f64");
        CHECK_FAILS(fe_model_open(model_path, NULL, NULL, o, &m), FE_ERR_INVALID_ARGUMENT, "precision");
        fe_options_free(o);
        fe_options_create(&o);
        fe_options_set(o, "colour", "red");
        CHECK_FAILS(fe_model_open(model_path, NULL, NULL, o, &m), FE_ERR_INVALID_ARGUMENT, "unknown option 'colour'");
        fe_options_free(o);
        fe_options_create(&o);
        fe_options_set(o, "threads", "many");
        CHECK_FAILS(fe_model_open(model_path, NULL, NULL, o, &m), FE_ERR_INVALID_ARGUMENT, "threads");
        fe_options_free(o);
    }
}

static void test_predict(fe_model* m) {
    enum { W = 80, H = 72 };
    static uint8_t bgr[H][W * 3 + 8], gray[H * W];
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W * 3; ++x) bgr[y][x] = (uint8_t)((x * 7 + y * 3) & 255);
    for (int i = 0; i < H * W; ++i) gray[i] = (uint8_t)(i & 255);
    fe_image crops[2] = {{&bgr[0][0], W, H, W * 3 + 8, 3}, {gray, W, H, W, 1}};
    fe_prediction* p = (fe_prediction*)1;
    CHECK(fe_model_num_classes(m) == 7);
    CHECK(strcmp(fe_model_label(m, 3), "happy") == 0);
    CHECK(fe_model_label(m, 7) == NULL);
    CHECK(strcmp(fe_model_method(m), "mini_xception") == 0);
    CHECK(strcmp(fe_model_backend(m), "openvino") == 0);
    CHECK(strstr(fe_model_metadata_json(m), "fer-edge/artifact") != NULL);
    CHECK(fe_model_is_video(m) == 0 && fe_model_clip_length(m) == 0);
    CHECK(fe_model_predict(m, crops, 2, &p) == FE_OK);
    CHECK(fe_prediction_count(p) == 2 && fe_prediction_num_classes(p) == 7);
    for (size_t i = 0; i < 2; ++i) {
        const float* probs = fe_prediction_probs(p, i);
        float sum = 0, best = -1;
        int arg = -1;
        for (int k = 0; k < 7; ++k) {
            sum += probs[k];
            if (probs[k] > best) best = probs[k], arg = k;
        }
        CHECK(fabsf(sum - 1.0f) < 1e-5f);
        CHECK(fe_prediction_label(p, i) == arg);
        CHECK(fe_prediction_raw(p, i) != NULL);
        CHECK(fe_prediction_uncertainty(p, i, NULL) == 0);
    }
    CHECK(fe_prediction_probs(p, 2) == NULL && fe_prediction_label(p, 2) == -1);
    fe_prediction_free(p);
    /* no crops: an empty result, not an error */
    CHECK(fe_model_predict(m, NULL, 0, &p) == FE_OK && fe_prediction_count(p) == 0);
    fe_prediction_free(p);
    /* bad crops */
    fe_image bad = crops[0];
    CHECK_FAILS(fe_model_predict(NULL, crops, 1, &p), FE_ERR_INVALID_ARGUMENT, "model is NULL");
    CHECK_FAILS(fe_model_predict(m, crops, 1, NULL), FE_ERR_INVALID_ARGUMENT, "out is NULL");
    CHECK_FAILS(fe_model_predict(m, NULL, 3, &p), FE_ERR_INVALID_ARGUMENT, "crops is NULL");
    CHECK(p == NULL);
    bad.data = NULL;
    CHECK_FAILS(fe_model_predict(m, &bad, 1, &p), FE_ERR_INVALID_ARGUMENT, "data is NULL");
    CHECK(strstr(fe_model_last_error(m), "data is NULL") != NULL);
    bad = crops[0];
    bad.stride = W;
    CHECK_FAILS(fe_model_predict(m, &bad, 1, &p), FE_ERR_INVALID_ARGUMENT, "stride");
    bad = crops[0];
    bad.channels = 2;
    CHECK_FAILS(fe_model_predict(m, &bad, 1, &p), FE_ERR_INVALID_ARGUMENT, "channels");
    bad = crops[0];
    bad.width = 0;
    CHECK_FAILS(fe_model_predict(m, &bad, 1, &p), FE_ERR_INVALID_ARGUMENT, "width and height");
    bad = crops[0];
    bad.height = -5;
    CHECK_FAILS(fe_model_predict(m, &bad, 1, &p), FE_ERR_INVALID_ARGUMENT, "width and height");
    CHECK_FAILS(fe_model_predict_clips(m, crops, 1, &p), FE_ERR_UNSUPPORTED, "image model");
}

static void test_pipeline(fe_model* m) {
    enum { W = 320, H = 240 };
    static uint8_t frame[H * W * 3];
    memset(frame, 90, sizeof frame);
    fe_image im = {frame, W, H, W * 3, 3};
    fe_pipeline* pipe = NULL;
    size_t n = 99;
    fe_options* o = NULL;
    CHECK_FAILS(fe_pipeline_create(NULL, NULL, &pipe), FE_ERR_INVALID_ARGUMENT, "model is NULL");
    fe_options_create(&o);
    fe_options_set(o, "ema", "1.5");
    CHECK_FAILS(fe_pipeline_create(m, o, &pipe), FE_ERR_INVALID_ARGUMENT, "ema");
    fe_options_free(o);
    fe_options_create(&o);
    fe_options_set(o, "emma", "0.5");
    CHECK_FAILS(fe_pipeline_create(m, o, &pipe), FE_ERR_INVALID_ARGUMENT, "unknown option 'emma'");
    fe_options_free(o);
    fe_options_create(&o);
    fe_options_set(o, "detector", "yolo");
    CHECK_FAILS(fe_pipeline_create(m, o, &pipe), FE_ERR_INVALID_ARGUMENT, "unknown face detector");
    fe_options_free(o);
    fe_options_create(&o);
    fe_options_set(o, "detector_model", "/nonexistent/blazeface.onnx");
    CHECK_FAILS(fe_pipeline_create(m, o, &pipe), FE_ERR_NOT_FOUND, "does not exist");
    fe_options_free(o);
    fe_options_create(&o);
    fe_options_set(o, "max_detect_side", "10");
    CHECK_FAILS(fe_pipeline_create(m, o, &pipe), FE_ERR_INVALID_ARGUMENT, "max_detect_side");
    fe_options_free(o);

    CHECK(fe_pipeline_create(m, NULL, &pipe) == FE_OK);
    CHECK(fe_pipeline_process(pipe, &im, &n) == FE_OK && n == 0); /* a flat frame has no face */
    CHECK(fe_pipeline_face(pipe, 0) == NULL);
    CHECK(fe_pipeline_frames(pipe) == 1);
    CHECK(fe_pipeline_stage_seconds(pipe, "detect") >= 0 && fe_pipeline_stage_seconds(pipe, "bogus") < 0);
    CHECK_FAILS(fe_pipeline_process(pipe, NULL, &n), FE_ERR_INVALID_ARGUMENT, "frame is NULL");
    CHECK_FAILS(fe_pipeline_process(pipe, &im, NULL), FE_ERR_INVALID_ARGUMENT, "num_faces is NULL");
    CHECK_FAILS(fe_pipeline_process(NULL, &im, &n), FE_ERR_INVALID_ARGUMENT, "pipeline is NULL");
    im.channels = 1;
    im.stride = W;
    CHECK_FAILS(fe_pipeline_process(pipe, &im, &n), FE_ERR_INVALID_ARGUMENT, "3 channels");
    CHECK(strstr(fe_pipeline_last_error(pipe), "3 channels") != NULL);
    CHECK(fe_pipeline_reset(pipe) == FE_OK);
    /* the pipeline keeps the model alive: free the model first */
    fe_model* own = NULL;
    fe_pipeline* pipe2 = NULL;
    CHECK(fe_model_open(g_model_path, NULL, NULL, NULL, &own) == FE_OK);
    CHECK(fe_pipeline_create(own, NULL, &pipe2) == FE_OK);
    fe_model_free(own);
    im.channels = 3;
    im.stride = W * 3;
    CHECK(fe_pipeline_process(pipe2, &im, &n) == FE_OK);
    fe_pipeline_free(pipe2);
    fe_pipeline_free(pipe);
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL DETECTOR TMPDIR\n", argv[0]);
        return 2;
    }
    fe_model* m = NULL;
    g_model_path = argv[1];
    test_library();
    test_options();
    test_open_errors(argv[1], argv[2], argv[3]);
    if (fe_model_open(argv[1], NULL, NULL, NULL, &m) != FE_OK) {
        fprintf(stderr, "cannot open %s: %s\n", argv[1], fe_last_error());
        return 1;
    }
    test_predict(m);
    test_pipeline(m);
    fe_model_free(m);
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
