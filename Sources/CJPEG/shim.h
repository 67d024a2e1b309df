#include <stdio.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

/*
 * Whole JPEG decodes and encodes for KilnData, in C.
 *
 * libjpeg reports a fatal error by calling err->error_exit, whose default prints the message and
 * calls exit(). The documented way out is a longjmp back to a setjmp taken before the failing call.
 * Swift cannot call setjmp, so each operation below runs between one setjmp and its cleanup, and
 * returns 0 on success or -1 with libjpeg's message in `message`.
 *
 * A truncated or damaged file is only a warning to libjpeg ("Premature end of JPEG file"), which
 * then pads the image with gray; with `strict` set, a warning fails the decode like an error.
 */

typedef struct {
    struct jpeg_error_mgr manager; /* first member, so that cinfo->err casts back to this struct */
    jmp_buf jump;
    int strict;
    char message[JMSG_LENGTH_MAX];
} kiln_jpeg_error;

static void kiln_jpeg_error_exit(j_common_ptr cinfo) {
    kiln_jpeg_error *error = (kiln_jpeg_error *)cinfo->err;
    error->manager.format_message(cinfo, error->message);
    longjmp(error->jump, 1);
}

/* Level -1 is a corrupt-data warning; levels >= 0 are traces. Nothing is printed. */
static void kiln_jpeg_emit_message(j_common_ptr cinfo, int level) {
    kiln_jpeg_error *error = (kiln_jpeg_error *)cinfo->err;
    if (level < 0) {
        error->manager.num_warnings++;
        if (error->strict) kiln_jpeg_error_exit(cinfo);
    }
}

static inline void kiln_jpeg_install(kiln_jpeg_error *error, int strict) {
    jpeg_std_error(&error->manager);
    error->manager.error_exit = kiln_jpeg_error_exit;
    error->manager.emit_message = kiln_jpeg_emit_message;
    error->strict = strict;
    error->message[0] = 0;
}

static inline void kiln_jpeg_set_message(char *message, size_t size, const char *text) {
    if (message != NULL && size > 0) {
        strncpy(message, text, size - 1);
        message[size - 1] = 0;
    }
}

/*
 * Decodes `size` bytes into 8-bit pixels, rows top to bottom, 1 channel (`gray`) or 3 (RGB).
 * On success *pixels is a malloc'd buffer of width * height * channels bytes that the caller frees.
 * An image of more than `max_pixels` pixels is refused before anything is allocated for it.
 */
static inline int kiln_jpeg_decode(const unsigned char *data, unsigned long size, int gray, int strict,
                                   unsigned long max_pixels, unsigned char **pixels, int *width,
                                   int *height, char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    kiln_jpeg_error error;
    unsigned char *volatile buffer = NULL; /* volatile: read after the longjmp */
    *pixels = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    kiln_jpeg_install(&error, strict);
    cinfo.err = &error.manager;
    if (setjmp(error.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(buffer);
        kiln_jpeg_set_message(message, message_size, error.message);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, size);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_calc_output_dimensions(&cinfo);
    if ((unsigned long long)cinfo.output_width * cinfo.output_height > max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        kiln_jpeg_set_message(message, message_size, "the image has more pixels than the decoder allows");
        return -1;
    }
    jpeg_start_decompress(&cinfo);
    size_t stride = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    buffer = (unsigned char *)malloc(stride * cinfo.output_height);
    if (buffer == NULL) {
        jpeg_destroy_decompress(&cinfo);
        kiln_jpeg_set_message(message, message_size, "out of memory for the decoded pixels");
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = buffer + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    *width = (int)cinfo.output_width;
    *height = (int)cinfo.output_height;
    jpeg_destroy_decompress(&cinfo);
    *pixels = buffer;
    return 0;
}

/*
 * Encodes 8-bit pixels (rows top to bottom, `channels` 1 or 3) at `quality` 1...100, with libjpeg's
 * default 4:2:0 chroma subsampling. On success *out is a malloc'd buffer of *out_size bytes that the
 * caller frees. On failure (only out of memory, for valid arguments) *out is NULL; libjpeg's
 * memory destination may then leak its buffer, because it publishes the pointer only at the end.
 */
static inline int kiln_jpeg_encode(const unsigned char *pixels, int width, int height, int channels,
                                   int quality, unsigned char **out, unsigned long *out_size,
                                   char *message, size_t message_size) {
    struct jpeg_compress_struct cinfo;
    kiln_jpeg_error error;
    *out = NULL;
    *out_size = 0;
    memset(&cinfo, 0, sizeof cinfo);
    kiln_jpeg_install(&error, 1);
    cinfo.err = &error.manager;
    if (setjmp(error.jump)) {
        jpeg_destroy_compress(&cinfo);
        *out = NULL;
        *out_size = 0;
        kiln_jpeg_set_message(message, message_size, error.message);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, out, out_size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)width * (size_t)channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + stride * cinfo.next_scanline);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return 0;
}
