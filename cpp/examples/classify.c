/* classify: the expression of a face image with the C API.
 *
 *   fe_classify MODEL IMAGE [--pipeline]
 *
 * Without --pipeline the whole image is taken as the face crop (as `fer_edge.load(...).predict`);
 * with it, faces are found, aligned and classified by the pipeline first. Prints one JSON line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fer_edge/fer_edge.h>

#include "image_io.h"

static int fail(const char* what) {
    fprintf(stderr, "fe_classify: %s: %s\n", what, fe_last_error());
    return 1;
}

static void print_probs(const fe_model* model, const float* probs) {
    printf("{");
    for (size_t k = 0; k < fe_model_num_classes(model); ++k)
        printf("%s\"%s\": %.4f", k ? ", " : "", fe_model_label(model, k), probs[k]);
    printf("}");
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL IMAGE [--pipeline]\n", argv[0]);
        return 2;
    }
    if (fe_abi_version() != FE_ABI_VERSION) {
        fprintf(stderr, "fe_classify: libfer_edge ABI %d, built against %d\n", fe_abi_version(), FE_ABI_VERSION);
        return 1;
    }
    int width = 0, height = 0;
    uint8_t* pixels = read_bgr(argv[2], &width, &height);
    if (!pixels) {
        fprintf(stderr, "fe_classify: cannot read the image %s\n", argv[2]);
        return 1;
    }
    fe_image image = {pixels, width, height, width * 3, 3};
    fe_model* model = NULL;
    int rc = 0;
    if (fe_model_open(argv[1], NULL, NULL, NULL, &model) != FE_OK) {
        rc = fail("cannot open the model");
    } else if (argc > 3 && strcmp(argv[3], "--pipeline") == 0) {
        fe_pipeline* pipe = NULL;
        size_t n = 0;
        if (fe_pipeline_create(model, NULL, &pipe) != FE_OK || fe_pipeline_process(pipe, &image, &n) != FE_OK) {
            rc = fail("the pipeline failed");
        } else {
            printf("{\"faces\": [");
            for (size_t i = 0; i < n; ++i) {
                const fe_face* f = fe_pipeline_face(pipe, i);
                printf("%s{\"track_id\": %lld, \"box\": [%.1f, %.1f, %.1f, %.1f], \"label\": \"%s\", \"probs\": ",
                       i ? ", " : "", (long long)f->track_id, f->box[0], f->box[1], f->box[2], f->box[3], f->label_name);
                print_probs(model, f->probs);
                printf("}");
            }
            printf("]}\n");
        }
        fe_pipeline_free(pipe);
    } else {
        fe_prediction* pred = NULL;
        if (fe_model_predict(model, &image, 1, &pred) != FE_OK) {
            rc = fail("prediction failed");
        } else {
            printf("{\"label\": \"%s\", \"probs\": ", fe_model_label(model, (size_t)fe_prediction_label(pred, 0)));
            print_probs(model, fe_prediction_probs(pred, 0));
            printf("}\n");
        }
        fe_prediction_free(pred);
    }
    fe_model_free(model);
    free(pixels);
    return rc;
}
