/*
 * JPEG decoding through libjpeg-turbo's libjpeg API, as Pillow's JPEG decoder drives it, so
 * that sipl keeps the images Pillow keeps with the pixels Pillow gives.
 *
 * - The file is the input through a suspending data source (libjpeg.txt, "I/O suspension"),
 *   shown to libjpeg in blocks of 64 KiB as Pillow reads it (ImageFile.MAXBLOCK): running
 *   out of data suspends the decoder, which resumes when the next block is shown; with no
 *   block left before every row is out, the file is truncated. Once every row is out, a
 *   suspension while libjpeg reads on to its end-of-image marker ends the decode as a
 *   success, as in Pillow: nothing past that block is read.
 * - Tables-only datastreams before the image (SOI, tables, EOI) are read and passed over, as
 *   Pillow's decoder does.
 * - libjpeg's defaults otherwise: integer-accurate IDCT (JDCT_ISLOW), fancy upsampling, the
 *   colour space libjpeg reads from the JFIF and Adobe markers and the component ids,
 *   converted to RGB.
 * - Warnings (corrupt entropy data, stray bytes before a marker) are not errors: libjpeg
 *   decodes on, as it does in Pillow. A fatal error longjmps back here; its message and code
 *   go to the caller.
 *
 * Conventions: every function returns SIPL_JPEG_OK, SIPL_JPEG_SUSPENDED (the data ran out) or
 * SIPL_JPEG_ERROR (the message is in the handle); no longjmp crosses into the caller's frames.
 * The Rust side is ingest/src/libjpeg.rs.
 */

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

enum { SIPL_JPEG_OK = 0, SIPL_JPEG_SUSPENDED = 1, SIPL_JPEG_ERROR = 2 };

/* What libjpeg read from the headers up to the first scan. */
typedef struct {
  uint32_t width;
  uint32_t height;
  int32_t components;
} sipl_jpeg_header;

/* Pillow reads an image file in blocks of this many bytes. */
#define SIPL_JPEG_BLOCK 65536

typedef struct {
  struct jpeg_decompress_struct cinfo;
  struct jpeg_error_mgr err;
  struct jpeg_source_mgr src;
  jmp_buf jump;
  int created;
  /* The whole file, and how much of it libjpeg has been shown. */
  const uint8_t *data;
  size_t len;
  size_t shown;
  /* Bytes libjpeg asked to skip past the end of what it was shown. */
  size_t skip;
  /* Rows handed out so far. */
  uint32_t rows;
  /* The last fatal error: libjpeg's message code (J_MESSAGE_CODE), its first integer
   * parameter and its text. */
  int32_t msg_code;
  int32_t msg_parm;
  char message[JMSG_LENGTH_MAX];
} sipl_jpeg;

static void error_exit(j_common_ptr cinfo) {
  sipl_jpeg *j = (sipl_jpeg *)cinfo->client_data;
  j->msg_code = cinfo->err->msg_code;
  j->msg_parm = cinfo->err->msg_parm.i[0];
  (*cinfo->err->format_message)(cinfo, j->message);
  longjmp(j->jump, 1);
}

/* Warnings and trace messages are counted by libjpeg and never printed. */
static void output_message(j_common_ptr cinfo) { (void)cinfo; }

static void init_source(j_decompress_ptr cinfo) { (void)cinfo; }

/* No more data will come: suspend. */
static boolean fill_input_buffer(j_decompress_ptr cinfo) {
  (void)cinfo;
  return FALSE;
}

/* A skip past the end of what libjpeg was shown is finished when the next block is shown. */
static void skip_input_data(j_decompress_ptr cinfo, long count) {
  struct jpeg_source_mgr *src = cinfo->src;
  sipl_jpeg *j = (sipl_jpeg *)cinfo->client_data;
  if (count <= 0) return;
  if ((size_t)count > src->bytes_in_buffer) {
    j->skip += (size_t)count - src->bytes_in_buffer;
    src->next_input_byte += src->bytes_in_buffer;
    src->bytes_in_buffer = 0;
  } else {
    src->next_input_byte += (size_t)count;
    src->bytes_in_buffer -= (size_t)count;
  }
}

static void term_source(j_decompress_ptr cinfo) { (void)cinfo; }

/* Shows libjpeg the next block of the file after a suspension; 0 when none is left. What
 * libjpeg had not consumed stays in front of it, as in Pillow's decoder. */
static int show_next_block(sipl_jpeg *j) {
  if (j->shown >= j->len) return 0;
  j->shown = j->len - j->shown > SIPL_JPEG_BLOCK ? j->shown + SIPL_JPEG_BLOCK : j->len;
  size_t at = (size_t)(j->src.next_input_byte - j->data);
  size_t skip = j->skip < j->shown - at ? j->skip : j->shown - at;
  j->skip -= skip;
  at += skip;
  j->src.next_input_byte = j->data + at;
  j->src.bytes_in_buffer = j->shown - at;
  return 1;
}

sipl_jpeg *sipl_jpeg_new(void) { return (sipl_jpeg *)calloc(1, sizeof(sipl_jpeg)); }

void sipl_jpeg_free(sipl_jpeg *j) {
  if (j == NULL) return;
  if (j->created) jpeg_destroy_decompress(&j->cinfo);
  free(j);
}

const char *sipl_jpeg_message(const sipl_jpeg *j) { return j->message; }
int32_t sipl_jpeg_msg_code(const sipl_jpeg *j) { return j->msg_code; }
int32_t sipl_jpeg_msg_parm(const sipl_jpeg *j) { return j->msg_parm; }
uint32_t sipl_jpeg_rows(const sipl_jpeg *j) { return j->rows; }

/* Whether message `code` names something this build of libjpeg does not decode (as opposed
 * to damaged data). */
int32_t sipl_jpeg_code_is_unsupported(int32_t code) {
  switch (code) {
    case JERR_SOF_UNSUPPORTED:
    case JERR_FRACT_SAMPLE_NOTIMPL:
    case JERR_NOT_COMPILED:
    case JERR_ARITH_NOTIMPL:
    case JERR_CONVERSION_NOTIMPL:
    case JERR_EMPTY_IMAGE:
    case JERR_BAD_PRECISION:
    case JERR_IMAGE_TOO_BIG:
    case JERR_WIDTH_OVERFLOW:
      return 1;
    default:
      return 0;
  }
}

/* libjpeg's code for an unsupported frame type, for the caller to recognise. */
int32_t sipl_jpeg_code_sof_unsupported(void) { return JERR_SOF_UNSUPPORTED; }

/* Reads the headers of `data` (the whole file, which must outlive the handle) up to the first
 * scan. */
int32_t sipl_jpeg_read_header(sipl_jpeg *j, const uint8_t *data, size_t len,
                              sipl_jpeg_header *out) {
  if (setjmp(j->jump)) return SIPL_JPEG_ERROR;
  j->cinfo.err = jpeg_std_error(&j->err);
  j->err.error_exit = error_exit;
  j->err.output_message = output_message;
  j->cinfo.client_data = j;
  /* Destroying a half-created decompressor is safe (its memory manager may still be null). */
  j->created = 1;
  jpeg_create_decompress(&j->cinfo);
  j->src.init_source = init_source;
  j->src.fill_input_buffer = fill_input_buffer;
  j->src.skip_input_data = skip_input_data;
  j->src.resync_to_restart = jpeg_resync_to_restart;
  j->src.term_source = term_source;
  j->data = data;
  j->len = len;
  j->shown = len < SIPL_JPEG_BLOCK ? len : SIPL_JPEG_BLOCK;
  j->src.next_input_byte = data;
  j->src.bytes_in_buffer = j->shown;
  j->cinfo.src = &j->src;
  for (;;) {
    int status = jpeg_read_header(&j->cinfo, FALSE);
    if (status == JPEG_HEADER_OK) break;
    if (status == JPEG_SUSPENDED && !show_next_block(j)) return SIPL_JPEG_SUSPENDED;
    /* JPEG_HEADER_TABLES_ONLY: the next call reads the next datastream. */
  }
  out->width = j->cinfo.image_width;
  out->height = j->cinfo.image_height;
  out->components = j->cinfo.num_components;
  return SIPL_JPEG_OK;
}

/* Decodes the image whose header was read into `rgb` (height rows of width x 3 bytes,
 * `len` bytes in all). */
int32_t sipl_jpeg_decode_rgb(sipl_jpeg *j, uint8_t *rgb, size_t len) {
  if (setjmp(j->jump)) return SIPL_JPEG_ERROR;
  j->cinfo.out_color_space = JCS_RGB;
  j->cinfo.dct_method = JDCT_ISLOW;
  j->cinfo.do_fancy_upsampling = TRUE;
  while (!jpeg_start_decompress(&j->cinfo))
    if (!show_next_block(j)) return SIPL_JPEG_SUSPENDED;
  size_t stride = (size_t)j->cinfo.output_width * 3;
  if (j->cinfo.output_components != 3 || stride * j->cinfo.output_height != len) {
    snprintf(j->message, sizeof j->message, "decoder output %ux%u with %d components",
             j->cinfo.output_width, j->cinfo.output_height, j->cinfo.output_components);
    j->msg_code = -1;
    return SIPL_JPEG_ERROR;
  }
  while (j->cinfo.output_scanline < j->cinfo.output_height) {
    JSAMPROW rows[16];
    JDIMENSION want = j->cinfo.output_height - j->cinfo.output_scanline;
    if (want > 16) want = 16;
    for (JDIMENSION r = 0; r < want; r++)
      rows[r] = rgb + (size_t)(j->cinfo.output_scanline + r) * stride;
    JDIMENSION got = jpeg_read_scanlines(&j->cinfo, rows, want);
    j->rows = j->cinfo.output_scanline;
    if (got == 0 && !show_next_block(j)) return SIPL_JPEG_SUSPENDED;
  }
  /* Every row is out: reading on to the end-of-image marker within the block shown may still
   * fail on damage (a second scan in a one-scan image), but a suspension there ends it. */
  (void)jpeg_finish_decompress(&j->cinfo);
  return SIPL_JPEG_OK;
}
