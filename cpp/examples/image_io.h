/* Reading an image file into BGR pixels for the C example (OpenCV 4 has only a C++ API). */
#ifndef FE_EXAMPLE_IMAGE_IO_H
#define FE_EXAMPLE_IMAGE_IO_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
/* Returns malloc'ed BGR pixels (free() them) and the size, or NULL if the file cannot be read. */
uint8_t* read_bgr(const char* path, int* width, int* height);
#ifdef __cplusplus
}
#endif
#endif
