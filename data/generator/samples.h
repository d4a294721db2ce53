/*
 * samples.h: what the pieces of the sample-data generator share.
 *
 * The generator is three files: scene.c decides where every object goes and
 * paints the pixels, rpcfit.c derives RPC00B coefficients from the exact
 * UTM <-> lon/lat mapping, and make_samples.c writes the rasters and the
 * ground truth with GDAL.  The scene is one in-memory description (this
 * header's asd_scene) from which every output file is derived, so the files
 * cannot disagree with each other.
 */
#ifndef ASD_SAMPLES_H
#define ASD_SAMPLES_H

#include <stdint.h>

#define SCENE_W 3000
#define SCENE_H 2000
#define SCENE_PIXEL 0.5                 /* metres */
#define SCENE_EPSG 32633                /* WGS 84 / UTM zone 33N */
#define SCENE_ORIGIN_E 448000.0         /* upper-left corner easting */
#define SCENE_ORIGIN_N 5411000.0        /* upper-left corner northing */
#define SCENE_SEED UINT64_C(20261129)

/* The nodata variant blanks this rectangle (pixels, max exclusive): 2 x 2
 * tiles of a 512 grid without overlap, and whole tiles of a 512/64 grid. */
#define NODATA_X0 1536
#define NODATA_Y0 0
#define NODATA_X1 2560
#define NODATA_Y1 1024

#define MAX_OBJECTS 256
#define MAX_VERTS 40

enum { CLASS_BUILDING = 0, CLASS_VEHICLE = 1 };
enum { SHAPE_RECT = 0, SHAPE_ROTRECT = 1, SHAPE_ELLIPSE = 2 };

typedef struct {
  int id;
  int cls;
  int shape;
  double cx, cy;        /* centre, image pixels (corner convention) */
  double w, h;          /* full width/height (ellipse: axes), pixels */
  double angle_deg;     /* rotation, counter-clockwise on screen is negative */
  unsigned char rgb[3]; /* base colour */
  uint16_t nir;         /* near-infrared (11-bit) for the UInt16 variant */
  const char *placement;
  int nverts;
  double vx[MAX_VERTS], vy[MAX_VERTS]; /* footprint polygon, pixels */
  int bbox[4];          /* painted pixels: minx, miny, maxx, maxy (max exclusive) */
  long npix;            /* painted pixel count */
  int in_nodata;        /* inside the nodata block of scene_nodata.tif */
} asd_object;

typedef struct {
  int nobj;
  asd_object obj[MAX_OBJECTS];
  unsigned char *rgb;   /* 3 planes of W*H bytes: R, G, B */
  uint16_t *nir;        /* one plane of W*H (11-bit) */
} asd_scene;

/* scene.c */
int scene_build(asd_scene *s);
void scene_free(asd_scene *s);
const char *scene_class_name(int cls);
const char *scene_shape_name(int shape);

/* rpcfit.c: RPC00B fields in GDAL's RPC metadata form. */
typedef struct {
  double line_off, samp_off, lat_off, long_off, height_off;
  double line_scale, samp_scale, lat_scale, long_scale, height_scale;
  double line_num[20], line_den[20], samp_num[20], samp_den[20];
  double max_residual_px;  /* over the fitting grid */
  double rms_residual_px;
  double max_check_px;     /* over an independent, denser check grid */
} asd_rpc;

/* Fits the model to pixel (corner convention) = f(lon, lat) given by the
 * callback; returns 0 on success. */
typedef int (*asd_ll_to_pixel_fn)(void *ctx, double lon, double lat, double *px, double *py);
int rpc_fit(asd_rpc *rpc, double lon_min, double lon_max, double lat_min, double lat_max,
            asd_ll_to_pixel_fn fn, void *ctx);
void rpc_format_coeff(double v, char out[16]);

#endif
