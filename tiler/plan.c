/*
 * plan.c: the tile plan.
 *
 * A large image reaches the model as a grid of tiles of a fixed size that
 * overlap by a fixed number of pixels, so that an object cut by one tile's
 * edge is seen whole by its neighbour (the merger later removes the
 * duplicates).  This file decides where the tiles go; it reads no pixels
 * except when asked to classify tiles (asd_plan_scan).
 *
 * Grid: along one axis, with ROI length L, tile size T and overlap O, the
 * stride is S = T - O and the number of tiles is 1 when L <= T, otherwise
 * ceil((L - T) / S) + 1: the smallest count whose tiles cover the ROI.  The
 * last tile would run past the ROI; by default it is shifted back so that
 * it ends exactly at the ROI's end (it overlaps its neighbour more than
 * the others do, but it is full size, so the model never sees a sliver and
 * detection sizes stay comparable).  With pad_edges it keeps its grid
 * position and is clipped to the image (the encoder pads it to full size).
 * An overlap as large as the tile would give a stride of zero (infinite
 * tiles): it is rejected.
 *
 * ROI: -srcwin is already in pixels.  -projwin and the AOI are in some
 * SRS; they are converted to pixels with the same transformer GDAL's own
 * tools use (GDALCreateGenImgProjTransformer2 run backwards, from the SRS to
 * the image), so that a projwin picks the same pixels as gdal_translate
 * would, give or take the rounding outward to whole pixels done here.  The
 * AOI's geometries are converted vertex by vertex into pixel space; the ROI
 * is their envelope, and tiles whose window touches none of them are marked
 * skipped (outside_aoi).
 *
 * Classification (nodata / constant) lives in asd_classify_pixels so that
 * the plan's scan and the encoder agree on what "empty" means: a tile is
 * nodata when no pixel of any selected band is valid according to the
 * band's nodata value or mask band (GDALGetMaskFlags), and constant when,
 * band by band, every valid pixel has the same value.
 */
#include "asyncdetect/asd_plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal_alg.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include "tiler_gdal_internal.h"

struct asd_plan {
  int tile_w, tile_h, overlap, pad;
  int rx, ry, rw, rh; /* ROI in image pixels */
  int rows, cols;
  int count;
  asd_tile *tiles;
  int skip_counts[ASD_SKIP_REASON_COUNT];
};

const char *asd_skip_reason_name(asd_skip_reason r) {
  switch (r) {
    case ASD_SKIP_NONE: return "none";
    case ASD_SKIP_NODATA: return "nodata";
    case ASD_SKIP_CONSTANT: return "constant";
    case ASD_SKIP_OUTSIDE_AOI: return "outside_aoi";
    default: return "unknown";
  }
}

void asd_plan_options_init(asd_plan_options *o) {
  memset(o, 0, sizeof(*o));
  o->tile_width = 512;
  o->tile_height = 512;
}

void asd_skip_options_init(asd_skip_options *o) {
  memset(o, 0, sizeof(*o));
  o->skip_nodata = 1;
  o->skip_constant = 1;
}

/* Number of tiles along one axis (see the essay above). */
static int axis_count(int len, int tile, int stride) {
  if (len <= tile) return 1;
  return (len - tile + stride - 1) / stride + 1;
}

/* Start and length of tile i along an axis of the ROI [start, start+len)
 * inside an image of size img. */
static void axis_window(int i, int start, int len, int tile, int stride, int pad, int img, int *pos,
                        int *size) {
  int p = start + i * stride;
  if (len <= tile) {
    *pos = start;
    *size = len;
    return;
  }
  if (!pad) {
    if (p + tile > start + len) p = start + len - tile;
    *pos = p;
    *size = tile;
    return;
  }
  *pos = p;
  *size = tile;
  if (p + tile > img) *size = img - p;
}

/* ------------------------------------------------------------------------
 * ROI from a projwin or an AOI: coordinates in some SRS -> image pixels.
 * ---------------------------------------------------------------------- */

/* A transformer from the image's pixels to srs_wkt (or the image's own SRS
 * when srs is NULL); used backwards.  NULL after CPLError. */
static void *srs_to_pixel_transformer(GDALDatasetH ds, const char *srs_user_input) {
  char **to = NULL;
  void *tr;
  char *wkt = NULL;
  if (srs_user_input && srs_user_input[0]) {
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    if (OSRSetFromUserInput(srs, srs_user_input) != OGRERR_NONE) {
      OSRDestroySpatialReference(srs);
      CPLError(CE_Failure, CPLE_IllegalArg, "asd_plan: cannot parse SRS '%s'", srs_user_input);
      return NULL;
    }
    OSRExportToWkt(srs, &wkt);
    OSRDestroySpatialReference(srs);
  } else {
    const char *proj = GDALGetProjectionRef(ds);
    if ((!proj || !proj[0]) && GDALGetGCPCount(ds) > 0) proj = GDALGetGCPProjection(ds);
    if (!proj || !proj[0]) proj = "EPSG:4326"; /* RPC and geolocation images are in lon/lat */
    wkt = CPLStrdup(proj);
  }
  to = CSLSetNameValue(to, "DST_SRS", wkt);
  if (GDALGetMetadata(ds, "RPC") && GDALGetMetadata(ds, "RPC")[0]) to = CSLSetNameValue(to, "METHOD", "RPC");
  CPLFree(wkt);
  CPLErrorReset();
  tr = GDALCreateGenImgProjTransformer2(ds, NULL, to);
  CSLDestroy(to);
  if (!tr)
    CPLError(CE_Failure, CPLE_AppDefined,
             "asd_plan: the image has no georeferencing usable to convert the region of interest to pixels");
  return tr;
}

/* Converts the points of a leaf geometry (and recursively of a container)
 * from SRS coordinates to image pixels, in place.  Returns 0, -1 on a point
 * that cannot be converted. */
static int geometry_to_pixels(OGRGeometryH g, void *tr) {
  int n = OGR_G_GetGeometryCount(g);
  if (n > 0) {
    for (int i = 0; i < n; i++)
      if (geometry_to_pixels(OGR_G_GetGeometryRef(g, i), tr) != 0) return -1;
    return 0;
  }
  int np = OGR_G_GetPointCount(g);
  if (np <= 0) return 0;
  double *x = CPLMalloc(sizeof(double) * (size_t)np * 3);
  double *y = x + np, *z = x + 2 * (size_t)np;
  int *ok = CPLMalloc(sizeof(int) * (size_t)np);
  int rc = 0;
  OGR_G_GetPoints(g, x, sizeof(double), y, sizeof(double), z, sizeof(double));
  for (int i = 0; i < np; i++) z[i] = 0;
  GDALGenImgProjTransform(tr, TRUE, np, x, y, z, ok);
  for (int i = 0; i < np; i++)
    if (!ok[i]) rc = -1;
  if (rc == 0) OGR_G_SetPoints(g, np, x, sizeof(double), y, sizeof(double), NULL, 0);
  CPLFree(x);
  CPLFree(ok);
  return rc;
}

/* Pixel-space AOI geometries. */
typedef struct aoi_set {
  OGRGeometryH *geoms;
  OGREnvelope *envs;
  int n;
} aoi_set;

static void aoi_free(aoi_set *a) {
  for (int i = 0; i < a->n; i++) OGR_G_DestroyGeometry(a->geoms[i]);
  CPLFree(a->geoms);
  CPLFree(a->envs);
  memset(a, 0, sizeof(*a));
}

static int aoi_load(GDALDatasetH ds, const char *path, const char *layer_name, aoi_set *a) {
  GDALDatasetH vds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
  if (!vds) {
    CPLError(CE_Failure, CPLE_OpenFailed, "asd_plan: cannot open AOI datasource '%s'", path);
    return -1;
  }
  int rc = 0, cap = 0;
  int nl = GDALDatasetGetLayerCount(vds);
  for (int li = 0; li < nl && rc == 0; li++) {
    OGRLayerH lyr = GDALDatasetGetLayer(vds, li);
    if (layer_name && strcmp(OGR_L_GetName(lyr), layer_name) != 0) continue;
    OGRSpatialReferenceH lsrs = OGR_L_GetSpatialRef(lyr);
    char *wkt = NULL;
    if (lsrs) OSRExportToWkt(lsrs, &wkt);
    void *tr = srs_to_pixel_transformer(ds, wkt);
    CPLFree(wkt);
    if (!tr) {
      rc = -1;
      break;
    }
    OGRFeatureH f;
    OGR_L_ResetReading(lyr);
    while ((f = OGR_L_GetNextFeature(lyr)) != NULL) {
      OGRGeometryH g = OGR_F_GetGeometryRef(f);
      if (g && !OGR_G_IsEmpty(g)) {
        OGRGeometryH c = OGR_G_Clone(g);
        if (geometry_to_pixels(c, tr) != 0) {
          CPLError(CE_Failure, CPLE_AppDefined,
                   "asd_plan: AOI feature %lld of layer '%s' cannot be converted to image pixels",
                   (long long)OGR_F_GetFID(f), OGR_L_GetName(lyr));
          OGR_G_DestroyGeometry(c);
          OGR_F_Destroy(f);
          rc = -1;
          break;
        }
        if (a->n == cap) {
          cap = cap ? cap * 2 : 16;
          a->geoms = CPLRealloc(a->geoms, sizeof(*a->geoms) * (size_t)cap);
          a->envs = CPLRealloc(a->envs, sizeof(*a->envs) * (size_t)cap);
        }
        a->geoms[a->n] = c;
        OGR_G_GetEnvelope(c, &a->envs[a->n]);
        a->n++;
      }
      OGR_F_Destroy(f);
    }
    GDALDestroyGenImgProjTransformer(tr);
  }
  GDALClose(vds);
  if (rc == 0 && a->n == 0) {
    CPLError(CE_Failure, CPLE_AppDefined, "asd_plan: AOI datasource '%s'%s%s%s has no geometry", path,
             layer_name ? " (layer '" : "", layer_name ? layer_name : "", layer_name ? "')" : "");
    rc = -1;
  }
  if (rc != 0) aoi_free(a);
  return rc;
}

static int aoi_intersects(const aoi_set *a, int x, int y, int w, int h) {
  OGRGeometryH box = NULL;
  int hit = 0;
  for (int i = 0; i < a->n && !hit; i++) {
    const OGREnvelope *e = &a->envs[i];
    if (e->MaxX < x || e->MinX > x + w || e->MaxY < y || e->MinY > y + h) continue;
    if (!box) {
      char wkt[256];
      snprintf(wkt, sizeof(wkt), "POLYGON((%d %d,%d %d,%d %d,%d %d,%d %d))", x, y, x + w, y, x + w, y + h, x,
               y + h, x, y);
      char *p = wkt;
      if (OGR_G_CreateFromWkt(&p, NULL, &box) != OGRERR_NONE) return 1;
    }
    /* Sharing only a border is not overlapping: such a tile holds no AOI pixel. */
    hit = OGR_G_Intersects(box, a->geoms[i]) && !OGR_G_Touches(box, a->geoms[i]);
  }
  if (box) OGR_G_DestroyGeometry(box);
  return hit;
}

/* Clips the double ROI [x0,x1) x [y0,y1) outward to whole pixels inside the
 * image.  Returns -1 when nothing is left. */
static int clip_roi(double x0, double y0, double x1, double y1, int iw, int ih, int *rx, int *ry, int *rw,
                    int *rh) {
  if (!(x0 < x1) || !(y0 < y1)) return -1;
  /* A tiny tolerance keeps a corner computed as 99.9999999 from adding a pixel column. */
  double ix0 = floor(x0 + 1e-6), iy0 = floor(y0 + 1e-6), ix1 = ceil(x1 - 1e-6), iy1 = ceil(y1 - 1e-6);
  if (ix0 < 0) ix0 = 0;
  if (iy0 < 0) iy0 = 0;
  if (ix1 > iw) ix1 = iw;
  if (iy1 > ih) iy1 = ih;
  if (ix1 <= ix0 || iy1 <= iy0) return -1;
  *rx = (int)ix0;
  *ry = (int)iy0;
  *rw = (int)(ix1 - ix0);
  *rh = (int)(iy1 - iy0);
  return 0;
}

static int projwin_to_roi(GDALDatasetH ds, const asd_plan_options *o, double *x0, double *y0, double *x1,
                          double *y1) {
  void *tr = srs_to_pixel_transformer(ds, o->projwin_srs);
  if (!tr) return -1;
  /* Walk the four edges of the box: under a reprojection or a sensor model
   * the box is not a rectangle in pixels, and its extreme pixels may lie
   * along an edge rather than at a corner. */
  enum { N = 21 };
  double px[4 * N], py[4 * N], pz[4 * N];
  int ok[4 * N];
  const double ulx = o->projwin[0], uly = o->projwin[1], lrx = o->projwin[2], lry = o->projwin[3];
  for (int i = 0; i < N; i++) {
    double t = (double)i / (N - 1);
    px[i] = ulx + t * (lrx - ulx), py[i] = uly;
    px[N + i] = ulx + t * (lrx - ulx), py[N + i] = lry;
    px[2 * N + i] = ulx, py[2 * N + i] = uly + t * (lry - uly);
    px[3 * N + i] = lrx, py[3 * N + i] = uly + t * (lry - uly);
  }
  memset(pz, 0, sizeof(pz));
  GDALGenImgProjTransform(tr, TRUE, 4 * N, px, py, pz, ok);
  GDALDestroyGenImgProjTransformer(tr);
  int any = 0;
  for (int i = 0; i < 4 * N; i++) {
    if (!ok[i]) continue;
    if (!any || px[i] < *x0) *x0 = px[i];
    if (!any || px[i] > *x1) *x1 = px[i];
    if (!any || py[i] < *y0) *y0 = py[i];
    if (!any || py[i] > *y1) *y1 = py[i];
    any = 1;
  }
  if (!any) {
    CPLError(CE_Failure, CPLE_AppDefined, "asd_plan: -projwin cannot be converted to image pixels");
    return -1;
  }
  return 0;
}

asd_plan *asd_plan_new(GDALDatasetH ds, const asd_plan_options *o) {
  asd_plan_options def;
  if (!o) {
    asd_plan_options_init(&def);
    o = &def;
  }
  if (!ds) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_plan: no dataset");
    return NULL;
  }
  if (o->tile_width <= 0 || o->tile_height <= 0) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_plan: tile size must be positive (got %d x %d)", o->tile_width,
             o->tile_height);
    return NULL;
  }
  if (o->overlap < 0 || o->overlap >= o->tile_width || o->overlap >= o->tile_height) {
    CPLError(CE_Failure, CPLE_IllegalArg,
             "asd_plan: overlap (%d px) must be >= 0 and smaller than the tile size (%d x %d)", o->overlap,
             o->tile_width, o->tile_height);
    return NULL;
  }
  if (o->has_srcwin + o->has_projwin + (o->aoi_path != NULL) > 1) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_plan: -srcwin, -projwin and an AOI are mutually exclusive");
    return NULL;
  }
  const int iw = GDALGetRasterXSize(ds), ih = GDALGetRasterYSize(ds);
  int rx = 0, ry = 0, rw = iw, rh = ih;
  aoi_set aoi = {0};
  if (o->has_srcwin) {
    if (o->srcwin[2] <= 0 || o->srcwin[3] <= 0) {
      CPLError(CE_Failure, CPLE_IllegalArg, "asd_plan: -srcwin size must be positive (got %d x %d)", o->srcwin[2],
               o->srcwin[3]);
      return NULL;
    }
    if (clip_roi(o->srcwin[0], o->srcwin[1], (double)o->srcwin[0] + o->srcwin[2],
                 (double)o->srcwin[1] + o->srcwin[3], iw, ih, &rx, &ry, &rw, &rh) != 0) {
      CPLError(CE_Failure, CPLE_IllegalArg, "asd_plan: -srcwin %d %d %d %d is outside the %d x %d image",
               o->srcwin[0], o->srcwin[1], o->srcwin[2], o->srcwin[3], iw, ih);
      return NULL;
    }
  } else if (o->has_projwin) {
    double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    if (projwin_to_roi(ds, o, &x0, &y0, &x1, &y1) != 0) return NULL;
    if (clip_roi(x0, y0, x1, y1, iw, ih, &rx, &ry, &rw, &rh) != 0) {
      CPLError(CE_Failure, CPLE_IllegalArg, "asd_plan: -projwin %.15g %.15g %.15g %.15g is outside the image",
               o->projwin[0], o->projwin[1], o->projwin[2], o->projwin[3]);
      return NULL;
    }
  } else if (o->aoi_path) {
    if (aoi_load(ds, o->aoi_path, o->aoi_layer, &aoi) != 0) return NULL;
    double x0 = aoi.envs[0].MinX, y0 = aoi.envs[0].MinY, x1 = aoi.envs[0].MaxX, y1 = aoi.envs[0].MaxY;
    for (int i = 1; i < aoi.n; i++) {
      x0 = fmin(x0, aoi.envs[i].MinX), y0 = fmin(y0, aoi.envs[i].MinY);
      x1 = fmax(x1, aoi.envs[i].MaxX), y1 = fmax(y1, aoi.envs[i].MaxY);
    }
    /* A point AOI has an empty envelope: give it one pixel. */
    if (x1 - x0 < 1) x1 = x0 + 1;
    if (y1 - y0 < 1) y1 = y0 + 1;
    if (clip_roi(x0, y0, x1, y1, iw, ih, &rx, &ry, &rw, &rh) != 0) {
      CPLError(CE_Failure, CPLE_IllegalArg, "asd_plan: AOI '%s' does not intersect the image", o->aoi_path);
      aoi_free(&aoi);
      return NULL;
    }
  }

  asd_plan *p = CPLCalloc(1, sizeof(*p));
  p->tile_w = o->tile_width;
  p->tile_h = o->tile_height;
  p->overlap = o->overlap;
  p->pad = o->pad_edges != 0;
  p->rx = rx, p->ry = ry, p->rw = rw, p->rh = rh;
  const int sx = p->tile_w - p->overlap, sy = p->tile_h - p->overlap;
  p->cols = axis_count(rw, p->tile_w, sx);
  p->rows = axis_count(rh, p->tile_h, sy);
  if ((long long)p->cols * p->rows > 100000000LL) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_plan: %d x %d tiles is too many; use larger tiles", p->cols,
             p->rows);
    aoi_free(&aoi);
    CPLFree(p);
    return NULL;
  }
  p->count = p->cols * p->rows;
  p->tiles = VSI_MALLOC2_VERBOSE(sizeof(asd_tile), (size_t)p->count);
  if (!p->tiles) {
    aoi_free(&aoi);
    CPLFree(p);
    return NULL;
  }
  for (int r = 0; r < p->rows; r++) {
    for (int c = 0; c < p->cols; c++) {
      asd_tile *t = &p->tiles[r * p->cols + c];
      t->index = r * p->cols + c;
      t->row = r;
      t->col = c;
      axis_window(c, rx, rw, p->tile_w, sx, p->pad, iw, &t->x, &t->w);
      axis_window(r, ry, rh, p->tile_h, sy, p->pad, ih, &t->y, &t->h);
      t->skip = ASD_SKIP_NONE;
      if (aoi.n > 0 && !aoi_intersects(&aoi, t->x, t->y, t->w, t->h)) t->skip = ASD_SKIP_OUTSIDE_AOI;
      p->skip_counts[t->skip]++;
    }
  }
  aoi_free(&aoi);
  return p;
}

void asd_plan_free(asd_plan *p) {
  if (!p) return;
  VSIFree(p->tiles);
  CPLFree(p);
}

int asd_plan_count(const asd_plan *p) { return p ? p->count : 0; }
int asd_plan_rows(const asd_plan *p) { return p ? p->rows : 0; }
int asd_plan_cols(const asd_plan *p) { return p ? p->cols : 0; }
int asd_plan_tile_width(const asd_plan *p) { return p ? p->tile_w : 0; }
int asd_plan_tile_height(const asd_plan *p) { return p ? p->tile_h : 0; }

const asd_tile *asd_plan_tile(const asd_plan *p, int i) {
  if (!p || i < 0 || i >= p->count) return NULL;
  return &p->tiles[i];
}

void asd_plan_roi(const asd_plan *p, int *x, int *y, int *w, int *h) {
  if (x) *x = p ? p->rx : 0;
  if (y) *y = p ? p->ry : 0;
  if (w) *w = p ? p->rw : 0;
  if (h) *h = p ? p->rh : 0;
}

void asd_plan_set_skip(asd_plan *p, int i, asd_skip_reason r) {
  if (!p || i < 0 || i >= p->count || r < 0 || r >= ASD_SKIP_REASON_COUNT) return;
  p->skip_counts[p->tiles[i].skip]--;
  p->tiles[i].skip = r;
  p->skip_counts[r]++;
}

int asd_plan_skip_count(const asd_plan *p, asd_skip_reason r) {
  if (!p || r < 0 || r >= ASD_SKIP_REASON_COUNT) return 0;
  return p->skip_counts[r];
}

/* ------------------------------------------------------------------------
 * Reading a window with its validity, and classifying it.
 * ---------------------------------------------------------------------- */

void asd_window_pixels_free(asd_window_pixels *px) {
  if (!px) return;
  VSIFree(px->values);
  VSIFree(px->valid);
  memset(px, 0, sizeof(*px));
}

void asd_nodata_validity(int has_nodata, double nodata, GDALDataType dt, const void *values, size_t npix,
                         unsigned char *v) {
  if (dt == GDT_Byte) {
    const unsigned char *src = values;
    int ndi = (has_nodata && nodata >= 0 && nodata <= 255 && nodata == floor(nodata)) ? (int)nodata : -1;
    for (size_t i = 0; i < npix; i++) v[i] = src[i] != ndi;
  } else {
    const double *src = values;
    if (isnan(nodata)) {
      for (size_t i = 0; i < npix; i++) v[i] = !isnan(src[i]);
    } else {
      for (size_t i = 0; i < npix; i++) v[i] = src[i] != nodata && !isnan(src[i]);
    }
  }
}

int asd_read_window(GDALDatasetH ds, const int *bands, int nbands, int x, int y, int w, int h, GDALDataType dt,
                    asd_window_pixels *px) {
  memset(px, 0, sizeof(*px));
  const size_t npix = (size_t)w * (size_t)h;
  const int dsize = GDALGetDataTypeSizeBytes(dt);
  px->dt = dt;
  px->nbands = nbands;
  px->npix = npix;
  px->values = VSI_MALLOC3_VERBOSE(npix, (size_t)nbands, (size_t)dsize);
  if (!px->values) return -1;
  /* One RasterIO over all the bands lets GDAL read pixel-interleaved
   * sources block by block once instead of once per band. */
  if (GDALDatasetRasterIO(ds, GF_Read, x, y, w, h, px->values, w, h, dt, nbands, (int *)bands, 0, 0, 0) !=
      CE_None) {
    char why[512]; /* GDAL's own cause, which CPLError would overwrite */
    snprintf(why, sizeof(why), "%s", CPLGetLastErrorMsg());
    CPLError(CE_Failure, CPLE_FileIO, "cannot read window %d,%d %dx%d of '%s': %s", x, y, w, h,
             GDALGetDescription(ds), why[0] ? why : "unknown error");
    asd_window_pixels_free(px);
    return -1;
  }
  /* Validity: a band whose mask is "all valid" needs nothing; a plain
   * nodata value is compared here on the values already read (reading the
   * nodata mask band would read the pixels a second time); any other mask
   * (mask band, alpha, per-dataset mask) is read with GDALGetMaskBand. */
  int per_dataset_done = -1;
  for (int b = 0; b < nbands; b++) {
    GDALRasterBandH band = GDALGetRasterBand(ds, bands[b]);
    int flags = GDALGetMaskFlags(band);
    if (flags & GMF_ALL_VALID) {
      if (px->valid) memset(px->valid + (size_t)b * npix, 1, npix);
      continue;
    }
    if (!px->valid) {
      px->valid = VSI_MALLOC2_VERBOSE(npix, (size_t)nbands);
      if (!px->valid) {
        asd_window_pixels_free(px);
        return -1;
      }
      for (int k = 0; k < b; k++) memset(px->valid + (size_t)k * npix, 1, npix);
    }
    unsigned char *v = px->valid + (size_t)b * npix;
    if (flags == GMF_NODATA) {
      int has = 0;
      double nd = GDALGetRasterNoDataValue(band, &has);
      asd_nodata_validity(has, nd, dt, (const unsigned char *)px->values + (size_t)b * npix * (size_t)dsize, npix,
                          v);
      continue;
    }
    if ((flags & GMF_PER_DATASET) && per_dataset_done >= 0) {
      memcpy(v, px->valid + (size_t)per_dataset_done * npix, npix);
      continue;
    }
    GDALRasterBandH mask = GDALGetMaskBand(band);
    if (GDALRasterIO(mask, GF_Read, x, y, w, h, v, w, h, GDT_Byte, 0, 0) != CE_None) {
      CPLError(CE_Failure, CPLE_FileIO, "cannot read the mask of band %d, window %d,%d %dx%d of '%s'", bands[b],
               x, y, w, h, GDALGetDescription(ds));
      asd_window_pixels_free(px);
      return -1;
    }
    for (size_t i = 0; i < npix; i++) v[i] = v[i] != 0;
    if (flags & GMF_PER_DATASET) per_dataset_done = b;
  }
  return 0;
}

int asd_classify_pixels(const asd_window_pixels *px, int skip_nodata, int skip_constant) {
  const size_t npix = px->npix;
  int any_valid = 0, constant = 1;
  for (int b = 0; b < px->nbands && (constant || !any_valid); b++) {
    const unsigned char *v = px->valid ? px->valid + (size_t)b * npix : NULL;
    int have_first = 0;
    double first = 0;
    for (size_t i = 0; i < npix; i++) {
      if (v && !v[i]) continue;
      double val = px->dt == GDT_Byte ? ((const unsigned char *)px->values)[(size_t)b * npix + i]
                                      : ((const double *)px->values)[(size_t)b * npix + i];
      any_valid = 1;
      if (!have_first) {
        first = val;
        have_first = 1;
      } else if (val != first && !(isnan(val) && isnan(first))) {
        constant = 0;
        break;
      }
    }
  }
  if (!any_valid) return skip_nodata ? ASD_SKIP_NODATA : (skip_constant ? ASD_SKIP_CONSTANT : ASD_SKIP_NONE);
  if (constant && skip_constant) return ASD_SKIP_CONSTANT;
  return ASD_SKIP_NONE;
}

/* Resolves the band list: NULL means every band. */
static int *resolve_bands(GDALDatasetH ds, const asd_skip_options *o, int *n) {
  int nb = GDALGetRasterCount(ds);
  if (nb <= 0) {
    CPLError(CE_Failure, CPLE_AppDefined, "'%s' has no raster band", GDALGetDescription(ds));
    return NULL;
  }
  int cnt = (o && o->bands && o->band_count > 0) ? o->band_count : nb;
  int *b = CPLMalloc(sizeof(int) * (size_t)cnt);
  for (int i = 0; i < cnt; i++) {
    b[i] = (o && o->bands && o->band_count > 0) ? o->bands[i] : i + 1;
    if (b[i] < 1 || b[i] > nb) {
      CPLError(CE_Failure, CPLE_IllegalArg, "band %d does not exist in '%s' (it has %d)", b[i],
               GDALGetDescription(ds), nb);
      CPLFree(b);
      return NULL;
    }
  }
  *n = cnt;
  return b;
}

int asd_classify_window(GDALDatasetH ds, int x, int y, int w, int h, const asd_skip_options *o) {
  asd_skip_options def;
  if (!o) {
    asd_skip_options_init(&def);
    o = &def;
  }
  int nb = 0;
  int *bands = resolve_bands(ds, o, &nb);
  if (!bands) return -1;
  GDALDataType dt = GDT_Byte;
  for (int i = 0; i < nb; i++)
    if (GDALGetRasterDataType(GDALGetRasterBand(ds, bands[i])) != GDT_Byte) dt = GDT_Float64;
  asd_window_pixels px;
  int rc = asd_read_window(ds, bands, nb, x, y, w, h, dt, &px);
  CPLFree(bands);
  if (rc != 0) return -1;
  rc = asd_classify_pixels(&px, o->skip_nodata, o->skip_constant);
  asd_window_pixels_free(&px);
  return rc;
}

int asd_plan_scan(asd_plan *p, GDALDatasetH ds, const asd_skip_options *o, GDALProgressFunc progress,
                  void *progress_data) {
  if (!p || !ds) return -1;
  for (int i = 0; i < p->count; i++) {
    asd_tile *t = &p->tiles[i];
    if (t->skip == ASD_SKIP_NONE) {
      int r = asd_classify_window(ds, t->x, t->y, t->w, t->h, o);
      if (r < 0) return -1;
      if (r != ASD_SKIP_NONE) asd_plan_set_skip(p, i, (asd_skip_reason)r);
    }
    if (progress && !progress((double)(i + 1) / p->count, NULL, progress_data)) {
      CPLError(CE_Failure, CPLE_UserInterrupt, "asd_plan: scan interrupted");
      return -1;
    }
  }
  return 0;
}
