/*
 * quicklook.c: a picture of the run for the command line (-quicklook).
 *
 * A user of the utility who wants to see the result should not need a GIS.
 * The quicklook is the source image reduced to a width (1024 pixels by
 * default), with the failed tiles shaded red and the detections outlined in
 * their class colours, written as a PNG.
 *
 * Everything is GDAL's: the reduced image is one RasterIO with averaging
 * resampling (on overviews when the source has them), held in a MEM dataset;
 * the outlines are burnt into it with GDALRasterizeGeometries (ALL_TOUCHED,
 * one call per class, the class colour as the burn values); the PNG is
 * written with the PNG driver's CreateCopy.  The MEM dataset has no
 * geotransform (so no .aux.xml appears beside the PNG): a small transformer
 * maps source pixels to quicklook pixels.
 *
 * What is drawn comes from the output the run has just written, read back
 * through OGR: the detections' image_geometry column (WKT in source pixels,
 * or the image_minx..image_maxy box when it is missing or empty) and the
 * tile-status layer's x, y, width, height and status.  Reading the output
 * rather than the run's memory keeps the module independent of the run and
 * makes the picture show exactly what was written; appended outputs are
 * filtered on source_image.  Shapefile outputs cut field names to ten
 * characters, so fields are also looked up by their first ten.
 *
 * Colours: the class colour table and class order of styles.c (classes
 * sorted by name across the layer), so a class has the same colour in the
 * PNG and in QGIS.  Pixel values: a Byte source is shown as it is; other
 * types are stretched band by band from the 2nd to the 98th percentile of
 * the reduced image (nodata excluded), enough to see an 11-bit or float
 * image without the utility's range options.
 */
#include "quicklook.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal_alg.h>
#include <ogr_api.h>

#include "styles.h"

/* Failed tiles: the image under them mixed with this red. */
static const double FAILED_RGB[3] = {227, 26, 28};
static const double FAILED_ALPHA = 0.45;

typedef struct scale_xy {
  double sx, sy; /* quicklook pixels per source pixel */
} scale_xy;

/* Source pixel coordinates -> quicklook pixel coordinates (GDALTransformerFunc). */
static int scale_transform(void *arg, int dst_to_src, int n, double *x, double *y, double *z, int *ok) {
  const scale_xy *s = arg;
  (void)z;
  for (int i = 0; i < n; i++) {
    if (dst_to_src) {
      x[i] /= s->sx;
      y[i] /= s->sy;
    } else {
      x[i] *= s->sx;
      y[i] *= s->sy;
    }
    ok[i] = TRUE;
  }
  return TRUE;
}

/* ------------------------------------------------------------------ image */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Maps a band of doubles to 0..255: as it is for Byte sources, else from
 * its 2nd to 98th percentile. */
static void to_byte(const double *in, size_t n, int is_byte, int has_nodata, double nodata, GByte *out) {
  double lo = 0, hi = 255;
  if (!is_byte) {
    double *v = VSI_MALLOC2_VERBOSE(n, sizeof(double));
    size_t m = 0;
    if (v) {
      for (size_t i = 0; i < n; i++)
        if (isfinite(in[i]) && !(has_nodata && in[i] == nodata)) v[m++] = in[i];
      if (m) {
        qsort(v, m, sizeof(double), cmp_double);
        lo = v[(size_t)(0.02 * (double)(m - 1))];
        hi = v[(size_t)(0.98 * (double)(m - 1))];
      }
      CPLFree(v);
    }
    if (hi <= lo) hi = lo + 1;
  }
  for (size_t i = 0; i < n; i++) {
    double t = (in[i] - lo) * 255.0 / (hi - lo);
    out[i] = (GByte)(isfinite(t) ? (t < 0 ? 0 : t > 255 ? 255 : t + 0.5) : 0);
  }
}

/* The reduced image as 3 Byte planes (grey sources repeated). */
static GByte *read_reduced(const asd_quicklook_request *q, int w, int h) {
  int bands[3];
  int nb = 0;
  const int count = GDALGetRasterCount(q->src);
  if (q->bands && q->nbands > 0) {
    for (int i = 0; i < q->nbands && nb < 3; i++) bands[nb++] = q->bands[i];
  } else {
    nb = count >= 3 ? 3 : 1;
    for (int i = 0; i < nb; i++) bands[i] = i + 1;
  }
  for (int i = 0; i < nb; i++)
    if (bands[i] < 1 || bands[i] > count) {
      CPLError(CE_Failure, CPLE_IllegalArg, "band %d does not exist (the image has %d)", bands[i], count);
      return NULL;
    }
  const size_t plane = (size_t)w * (size_t)h;
  double *buf = VSI_MALLOC2_VERBOSE(plane, sizeof(double));
  GByte *rgb = VSI_MALLOC2_VERBOSE(plane, 3);
  if (!buf || !rgb) {
    CPLFree(buf);
    CPLFree(rgb);
    return NULL;
  }
  GDALRasterIOExtraArg extra;
  INIT_RASTERIO_EXTRA_ARG(extra);
  extra.eResampleAlg = GRIORA_Average;
  for (int i = 0; i < nb; i++) {
    GDALRasterBandH b = GDALGetRasterBand(q->src, bands[i]);
    if (GDALRasterIOEx(b, GF_Read, 0, 0, GDALGetRasterXSize(q->src), GDALGetRasterYSize(q->src), buf, w, h,
                       GDT_Float64, 0, 0, &extra) != CE_None) {
      CPLFree(buf);
      CPLFree(rgb);
      return NULL;
    }
    int has_nodata = 0;
    double nodata = GDALGetRasterNoDataValue(b, &has_nodata);
    to_byte(buf, plane, GDALGetRasterDataType(b) == GDT_Byte, has_nodata, nodata, rgb + (size_t)i * plane);
  }
  for (int i = nb; i < 3; i++) memcpy(rgb + (size_t)i * plane, rgb, plane);
  CPLFree(buf);
  return rgb;
}

/* ------------------------------------------------------------------ output layers */

/* A field by name, or by its first ten characters (Shapefile). */
static int field_index(OGRLayerH lyr, const char *name) {
  OGRFeatureDefnH d = OGR_L_GetLayerDefn(lyr);
  int i = OGR_FD_GetFieldIndex(d, name);
  if (i < 0 && strlen(name) > 10) {
    char short_name[11];
    memcpy(short_name, name, 10);
    short_name[10] = '\0';
    i = OGR_FD_GetFieldIndex(d, short_name);
  }
  return i;
}

static OGRLayerH open_layer(const char *path, const char *name, GDALDatasetH *ds) {
  *ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR, NULL, NULL, NULL);
  if (!*ds) return NULL;
  OGRLayerH lyr = name ? GDALDatasetGetLayerByName(*ds, name) : NULL;
  if (!lyr && GDALDatasetGetLayerCount(*ds) == 1) lyr = GDALDatasetGetLayer(*ds, 0);
  if (!lyr) CPLError(CE_Failure, CPLE_AppDefined, "no layer '%s' in '%s'", name ? name : "", path);
  return lyr;
}

/* Keeps only the features of one source image, when the layer says which. */
static void filter_source(OGRLayerH lyr, const char *source_image) {
  int fi = source_image ? field_index(lyr, "source_image") : -1;
  if (fi < 0) return;
  char *v = CPLEscapeString(source_image, -1, CPLES_SQL);
  char *f = CPLStrdup(CPLSPrintf("\"%s\" = '%s'", OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(OGR_L_GetLayerDefn(lyr), fi)), v));
  OGR_L_SetAttributeFilter(lyr, f);
  CPLFree(v);
  CPLFree(f);
}

/* Shades the failed tiles of the tile-status layer in the reduced image. */
static void shade_failed_tiles(OGRLayerH tiles, const char *source_image, GByte *rgb, int w, int h,
                               const scale_xy *s) {
  filter_source(tiles, source_image);
  const int fx = field_index(tiles, "x"), fy = field_index(tiles, "y"), fw = field_index(tiles, "width"),
            fh = field_index(tiles, "height"), fs = field_index(tiles, "status");
  if (fx < 0 || fy < 0 || fw < 0 || fh < 0 || fs < 0) return;
  const size_t plane = (size_t)w * (size_t)h;
  OGRFeatureH f;
  OGR_L_ResetReading(tiles);
  while ((f = OGR_L_GetNextFeature(tiles)) != NULL) {
    if (EQUAL(OGR_F_GetFieldAsString(f, fs), "failed")) {
      const double x0 = OGR_F_GetFieldAsDouble(f, fx), y0 = OGR_F_GetFieldAsDouble(f, fy);
      const int c0 = (int)floor(x0 * s->sx), r0 = (int)floor(y0 * s->sy);
      const int c1 = (int)ceil((x0 + OGR_F_GetFieldAsDouble(f, fw)) * s->sx);
      const int r1 = (int)ceil((y0 + OGR_F_GetFieldAsDouble(f, fh)) * s->sy);
      for (int r = r0 < 0 ? 0 : r0; r < r1 && r < h; r++)
        for (int c = c0 < 0 ? 0 : c0; c < c1 && c < w; c++) {
          /* Shaded inside, solid red on the tile's edge. */
          const double a = (r == r0 || r == r1 - 1 || c == c0 || c == c1 - 1) ? 1.0 : FAILED_ALPHA;
          for (int k = 0; k < 3; k++) {
            GByte *p = rgb + (size_t)k * plane + (size_t)r * (size_t)w + (size_t)c;
            *p = (GByte)(*p * (1 - a) + FAILED_RGB[k] * a + 0.5);
          }
        }
    }
    OGR_F_Destroy(f);
  }
  OGR_L_SetAttributeFilter(tiles, NULL);
}

/* The outline of a detection in source pixels: its image geometry's
 * boundary, else its box's. */
static OGRGeometryH detection_outline(OGRFeatureH f, int f_geom, const int *f_box) {
  OGRGeometryH g = NULL;
  if (f_geom >= 0 && OGR_F_IsFieldSetAndNotNull(f, f_geom)) {
    char *wkt = (char *)OGR_F_GetFieldAsString(f, f_geom);
    if (OGR_G_CreateFromWkt(&wkt, NULL, &g) != OGRERR_NONE) g = NULL;
  }
  if (!g && f_box[0] >= 0 && f_box[1] >= 0 && f_box[2] >= 0 && f_box[3] >= 0) {
    const double x0 = OGR_F_GetFieldAsDouble(f, f_box[0]), y0 = OGR_F_GetFieldAsDouble(f, f_box[1]);
    const double x1 = OGR_F_GetFieldAsDouble(f, f_box[2]), y1 = OGR_F_GetFieldAsDouble(f, f_box[3]);
    g = OGR_G_CreateGeometry(wkbLineString);
    OGR_G_AddPoint_2D(g, x0, y0);
    OGR_G_AddPoint_2D(g, x1, y0);
    OGR_G_AddPoint_2D(g, x1, y1);
    OGR_G_AddPoint_2D(g, x0, y1);
    OGR_G_AddPoint_2D(g, x0, y0);
    return g;
  }
  if (!g) return NULL;
  const OGRwkbGeometryType t = wkbFlatten(OGR_G_GetGeometryType(g));
  if (t == wkbPolygon || t == wkbMultiPolygon) {
    OGRGeometryH b = OGR_G_Boundary(g);
    OGR_G_DestroyGeometry(g);
    return b;
  }
  return g; /* points and lines are drawn as they are */
}

/* Burns every detection's outline in its class colour. */
static int draw_detections(GDALDatasetH mem, GDALDatasetH det_ds, OGRLayerH det, const char *source_image,
                           scale_xy *s) {
  int nclasses = 0;
  char **classes = asd_styles_layer_classes(det_ds, det, &nclasses);
  filter_source(det, source_image);
  const int f_class = field_index(det, "class"), f_geom = field_index(det, "image_geometry");
  const int f_box[4] = {field_index(det, "image_minx"), field_index(det, "image_miny"), field_index(det, "image_maxx"),
                        field_index(det, "image_maxy")};
  /* Outlines grouped by class (index nclasses: no class, drawn white). */
  OGRGeometryH **by_class = CPLCalloc((size_t)nclasses + 1, sizeof(OGRGeometryH *));
  int *count = CPLCalloc((size_t)nclasses + 1, sizeof(int));
  OGRFeatureH f;
  OGR_L_ResetReading(det);
  while ((f = OGR_L_GetNextFeature(det)) != NULL) {
    OGRGeometryH g = detection_outline(f, f_geom, f_box);
    if (g) {
      int k = f_class >= 0 ? CSLFindString(classes, OGR_F_GetFieldAsString(f, f_class)) : -1;
      if (k < 0) k = nclasses;
      by_class[k] = CPLRealloc(by_class[k], sizeof(OGRGeometryH) * (size_t)(count[k] + 1));
      by_class[k][count[k]++] = g;
    }
    OGR_F_Destroy(f);
  }
  OGR_L_SetAttributeFilter(det, NULL);
  int bands[3] = {1, 2, 3};
  char **opts = CSLSetNameValue(NULL, "ALL_TOUCHED", "TRUE");
  int rc = 0;
  for (int k = 0; k <= nclasses; k++) {
    if (count[k] && rc == 0) {
      unsigned char c[3] = {255, 255, 255};
      if (k < nclasses) asd_styles_class_color(k, c);
      double *burn = CPLMalloc(sizeof(double) * 3 * (size_t)count[k]);
      for (int i = 0; i < count[k]; i++)
        for (int b = 0; b < 3; b++) burn[3 * i + b] = c[b];
      if (GDALRasterizeGeometries(mem, 3, bands, count[k], by_class[k], scale_transform, s, burn, opts, NULL, NULL) !=
          CE_None)
        rc = -1;
      CPLFree(burn);
    }
    for (int i = 0; i < count[k]; i++) OGR_G_DestroyGeometry(by_class[k][i]);
    CPLFree(by_class[k]);
  }
  CSLDestroy(opts);
  CPLFree(by_class);
  CPLFree(count);
  CSLDestroy(classes);
  return rc;
}

/* ------------------------------------------------------------------ the picture */

static GDALDatasetH make_mem(GByte *rgb, int w, int h) {
  GDALDriverH mem_drv = GDALGetDriverByName("MEM");
  GDALDatasetH mem = mem_drv ? GDALCreate(mem_drv, "", w, h, 3, GDT_Byte, NULL) : NULL;
  if (!mem) return NULL;
  if (GDALDatasetRasterIO(mem, GF_Write, 0, 0, w, h, rgb, w, h, GDT_Byte, 3, NULL, 0, 0, 0) != CE_None) {
    GDALClose(mem);
    return NULL;
  }
  static const GDALColorInterp ci[3] = {GCI_RedBand, GCI_GreenBand, GCI_BlueBand};
  for (int b = 0; b < 3; b++) GDALSetRasterColorInterpretation(GDALGetRasterBand(mem, b + 1), ci[b]);
  return mem;
}

static int write_png(GDALDatasetH mem, const char *path) {
  GDALDriverH png = GDALGetDriverByName("PNG");
  if (!png) {
    CPLError(CE_Failure, CPLE_NotSupported, "GDAL has no PNG driver");
    return -1;
  }
  GDALDatasetH out = GDALCreateCopy(png, path, mem, FALSE, NULL, NULL, NULL);
  if (!out) return -1;
  CPLErrorReset();
  GDALClose(out);
  return CPLGetLastErrorType() == CE_Failure ? -1 : 0;
}

int asd_quicklook_write(const asd_quicklook_request *q) {
  if (!q || !q->png_path || !q->src || !q->det_path) {
    CPLError(CE_Failure, CPLE_IllegalArg, "quicklook: missing argument");
    return -1;
  }
  GDALAllRegister();
  const int sw = GDALGetRasterXSize(q->src), sh = GDALGetRasterYSize(q->src);
  int w = q->width > 0 ? q->width : 1024;
  if (w > sw) w = sw;
  int h = (int)llround((double)sh * w / sw);
  if (h < 1) h = 1;
  scale_xy s = {(double)w / sw, (double)h / sh};

  GByte *rgb = read_reduced(q, w, h);
  if (!rgb) return -1;
  GDALDatasetH tiles_ds = NULL, det_ds = NULL;
  OGRLayerH tiles = q->tiles_path ? open_layer(q->tiles_path, q->tiles_layer, &tiles_ds) : NULL;
  if (tiles) shade_failed_tiles(tiles, q->source_image, rgb, w, h, &s);
  if (tiles_ds) GDALClose(tiles_ds);
  GDALDatasetH mem = make_mem(rgb, w, h);
  CPLFree(rgb);
  if (!mem) return -1;
  int rc = -1;
  OGRLayerH det = open_layer(q->det_path, q->det_layer, &det_ds);
  if (det && draw_detections(mem, det_ds, det, q->source_image, &s) == 0) rc = write_png(mem, q->png_path);
  if (det_ds) GDALClose(det_ds);
  GDALClose(mem);
  return rc;
}
