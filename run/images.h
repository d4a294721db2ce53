/*
 * images.h: the images of a run (images.c).  Internal (not installed).
 *
 * A run works on a set of images (one for asd_detect(), several for
 * asd_detect_many() and the utility given SRC1 SRC2 ... DST), with one
 * worker pool, one output and one journal for the whole set.  Each image
 * keeps what is its own: its plan, its georeferencer, its merger (seams are
 * merged within an image, never across two) and, while its tiles are being
 * read, its encoder.  The run numbers tiles globally: image k's tiles are
 * first .. first + ntiles - 1, in list order, so the journal, the pool and
 * the sink deal with one tile number, and asd_run_image_of() finds the image.
 */
#ifndef ASD_RUN_IMAGES_H
#define ASD_RUN_IMAGES_H

#include <pthread.h>

#include "asyncdetect/asd_encode.h"
#include "asyncdetect/asd_georef.h"
#include "asyncdetect/asd_merge.h"
#include "asyncdetect/asd_plan.h"
#include "gdal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where an image's encoder is in its life (images.c asd_run_image_encoder). */
typedef enum asd_run_encoder_state {
  ASD_RUN_ENC_NONE = 0, /* not opened yet */
  ASD_RUN_ENC_OPENING,  /* an encoder thread is opening it: others wait */
  ASD_RUN_ENC_OPEN,
  ASD_RUN_ENC_FAILED,   /* could not be opened: enc_error says why, its tiles fail */
  ASD_RUN_ENC_CLOSED    /* its last tile was encoded */
} asd_run_encoder_state;

typedef struct asd_run_image {
  char *name;          /* as given: opens the dataset and is never written anywhere */
  char *label;         /* asd_source_label(name): what the journal, metrics, features and messages say */
  GDALDatasetH src;    /* open while needed (setup), or the caller's (asd_detect) */
  int borrowed;        /* src is the caller's: never closed here */
  int reopenable;      /* the encoder may open it again by name (else it shares src) */
  asd_plan *plan;
  asd_georef *georef;
  asd_merger *merger;
  int first, ntiles;   /* its tiles' global numbers: first .. first + ntiles - 1 */
  char raster_size[64];/* WxHxBANDS, for the journal identity */

  /* The encoder: opened when its first tile is read, freed after its last
     one in a run over several images, so that open datasets and handles
     stay a few whatever the number of images.  Guarded by the run's mutex. */
  asd_encoder *encoder;
  asd_run_encoder_state enc_state;
  char *enc_error;
  int enc_left;        /* tiles still to encode in this run */
  char *pixels;        /* the encoder's range adjustment, one line, kept after it closes */

  /* Figures (the sink's thread). */
  long long received, kept;
} asd_run_image;

struct asd_detect_options;

/* Image i of names (or the caller's dataset src when names is NULL). */
void asd_run_image_init(asd_run_image *im, const char *name, GDALDatasetH borrowed);
void asd_run_image_free(asd_run_image *im);

/* Opens the dataset (unless borrowed): 0, or -1 with one line in err. */
int asd_run_image_open_dataset(asd_run_image *im, char *err, size_t errlen);
/* Closes it again (unless borrowed): the plan and georeferencer are kept. */
void asd_run_image_close_dataset(asd_run_image *im);

/* Encoder options from the run's options (tile format, bands, scaling...). */
void asd_run_encode_options(const struct asd_detect_options *o, asd_encode_options *eo);

/* Opens the image's encoder now (the caller holds no lock).  0 or -1 with
   the cause in im->enc_error. */
int asd_run_image_open_encoder(asd_run_image *im, const struct asd_detect_options *o);
/* Frees the encoder, keeping its one-line description in im->pixels. */
void asd_run_image_close_encoder(asd_run_image *im);

#ifdef __cplusplus
}
#endif

#endif /* ASD_RUN_IMAGES_H */
