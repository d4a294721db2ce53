/*
 * georef.c: image pixels -> output coordinates.
 *
 * The promise of this module is that a detection lands where GDAL's own
 * tools say its pixels are.  So it does no geodesy of its own: it builds
 * exactly the transformer gdaltransform and gdalwarp build
 * (GDALCreateGenImgProjTransformer2 over the source dataset, no destination
 * dataset, DST_SRS given as WKT) and runs it forward, from source pixels to
 * destination coordinates.  With the same options, the numbers are the same
 * to the last bit as `gdaltransform -t_srs ... image`.
 *
 * Method choice.  GDAL's default order is geotransform, then GCPs, then
 * RPCs.  Here an image that carries RPCs uses them first: a NITF or a
 * satellite GeoTIFF with RPCs often also has corner coordinates (IGEOLO) or a
 * coarse geotransform from which GDAL would build an affine approximation
 * many metres off, while the RPCs are the sensor model the provider meant.
 * Geolocation arrays come next, then GDAL's default.  The caller may force
 * any METHOD (and give RPC_HEIGHT, RPC_DEM, MAX_GCP_ORDER...) through
 * transformer_options, exactly as with gdaltransform -to.
 *
 * Axis order.  GDAL's transformer interprets a DST_SRS string with the
 * traditional GIS axis order (longitude, latitude for EPSG:4326), and the
 * output SRS this module hands to writers is given the same mapping
 * (OAMS_TRADITIONAL_GIS_ORDER), so that the coordinates and the SRS written
 * beside them agree.
 *
 * Shapes.  An affine transform maps a straight edge to a straight edge, so a
 * box needs only its four corners.  Every other case (RPC, GCP TPS or
 * polynomial, geolocation arrays, any reprojection) bends edges; there the
 * ring is densified in pixel space (a vertex every densify_pixels, capped per
 * edge) before the vertices are transformed.
 *
 * No georeferencing.  Detections stay in image pixels.  This is not an
 * error (an analyst may want the boxes over an unreferenced scan), but it is
 * worth a clear warning since the output will not line up with any map.
 */
#include "asyncdetect/asd_georef.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal_alg.h>

struct asd_georef {
  void *tr;                   /* GenImgProj transformer, NULL in pixel space */
  OGRSpatialReferenceH srs;   /* output SRS, NULL in pixel space or unknown */
  char method[32];
  int affine;
  double densify;
  int max_per_edge;
  pthread_mutex_t lock;
};

void asd_georef_options_init(asd_georef_options *o) {
  memset(o, 0, sizeof(*o));
  o->densify_pixels = 8;
  o->max_points_per_edge = 64;
}

static int has_domain(GDALDatasetH ds, const char *domain) {
  char **md = GDALGetMetadata(ds, domain);
  return md && md[0];
}

asd_georef *asd_georef_new(GDALDatasetH ds, const asd_georef_options *o) {
  asd_georef_options def;
  if (!o) {
    asd_georef_options_init(&def);
    o = &def;
  }
  if (!ds) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_georef: no dataset");
    return NULL;
  }
  asd_georef *g = CPLCalloc(1, sizeof(*g));
  pthread_mutex_init(&g->lock, NULL);
  g->densify = o->densify_pixels;
  g->max_per_edge = o->max_points_per_edge > 0 ? o->max_points_per_edge : 64;

  double gt[6];
  const int has_gt = GDALGetGeoTransform(ds, gt) == CE_None;
  const int has_gcps = GDALGetGCPCount(ds) > 0;
  const int has_rpc = has_domain(ds, "RPC");
  const int has_geoloc = has_domain(ds, "GEOLOCATION");
  const char *forced = CSLFetchNameValue(o->transformer_options, "METHOD");
  const char *src_wkt = GDALGetProjectionRef(ds);
  if (!has_gt && has_gcps) src_wkt = GDALGetGCPProjection(ds);

  if (!forced && !has_gt && !has_gcps && !has_rpc && !has_geoloc) {
    CPLError(CE_Warning, CPLE_AppDefined,
             "'%s' has no georeferencing (no geotransform, GCPs, RPCs or geolocation arrays): "
             "detections are written in image pixel coordinates",
             GDALGetDescription(ds));
    strcpy(g->method, "PIXEL");
    g->affine = 1;
    return g;
  }

  char **to = CSLDuplicate(o->transformer_options);
  const char *method = forced;
  if (!method) {
    if (has_rpc) method = "RPC";
    else if (has_geoloc) method = "GEOLOC_ARRAY";
    else if (has_gt) method = "GEOTRANSFORM";
    else method = "GCP_POLYNOMIAL";
    /* GDAL's default order already picks a geotransform or GCPs; naming
     * RPC or GEOLOC_ARRAY is what changes its choice. */
    if (has_rpc || has_geoloc) to = CSLSetNameValue(to, "METHOD", method);
  }
  snprintf(g->method, sizeof(g->method), "%s", method);

  /* The SRS the points come from: the image's, or WGS 84 for sensor
   * models (RPCs and geolocation arrays in GDAL default to it). */
  const int sensor = EQUAL(method, "RPC") || EQUAL(method, "GEOLOC_ARRAY");
  if (!sensor && (!src_wkt || !src_wkt[0]) && !CSLFetchNameValue(to, "SRC_SRS")) {
    if (o->t_srs)
      CPLError(CE_Warning, CPLE_AppDefined,
               "'%s' has a geotransform or GCPs but no SRS: -t_srs is ignored and coordinates are written "
               "in the image's georeferenced units, without an SRS",
               GDALGetDescription(ds));
    else
      CPLError(CE_Warning, CPLE_AppDefined,
               "'%s' has a geotransform or GCPs but no SRS: coordinates are written in its georeferenced "
               "units, without an SRS",
               GDALGetDescription(ds));
  } else {
    g->srs = OSRNewSpatialReference(NULL);
    const char *want = o->t_srs ? o->t_srs : "EPSG:4326";
    if (OSRSetFromUserInput(g->srs, want) != OGRERR_NONE) {
      CPLError(CE_Failure, CPLE_IllegalArg, "asd_georef: cannot parse output SRS '%s'", want);
      CSLDestroy(to);
      asd_georef_free(g);
      return NULL;
    }
    OSRSetAxisMappingStrategy(g->srs, OAMS_TRADITIONAL_GIS_ORDER);
    char *wkt = NULL;
    OSRExportToWkt(g->srs, &wkt);
    to = CSLSetNameValue(to, "DST_SRS", wkt);
    CPLFree(wkt);
  }

  CPLErrorReset();
  g->tr = GDALCreateGenImgProjTransformer2(ds, NULL, to);
  CSLDestroy(to);
  if (!g->tr) {
    CPLError(CE_Failure, CPLE_AppDefined, "asd_georef: cannot build a %s transformer for '%s'%s%s", method,
             GDALGetDescription(ds), CPLGetLastErrorMsg()[0] ? ": " : "", CPLGetLastErrorMsg());
    asd_georef_free(g);
    return NULL;
  }

  /* Affine only for a geotransform whose SRS is the output SRS (or no SRS). */
  g->affine = 0;
  if (EQUAL(method, "GEOTRANSFORM") && has_gt) {
    if (!g->srs) {
      g->affine = 1;
    } else if (src_wkt && src_wkt[0]) {
      OGRSpatialReferenceH s = OSRNewSpatialReference(src_wkt);
      if (s) {
        g->affine = OSRIsSame(s, g->srs) != 0;
        OSRDestroySpatialReference(s);
      }
    }
  }
  CPLDebug("ASD", "georef: method %s, %s", g->method, g->affine ? "affine" : "non-affine (edges densified)");
  return g;
}

void asd_georef_free(asd_georef *g) {
  if (!g) return;
  if (g->tr) GDALDestroyGenImgProjTransformer(g->tr);
  if (g->srs) OSRDestroySpatialReference(g->srs);
  pthread_mutex_destroy(&g->lock);
  CPLFree(g);
}

int asd_georef_is_pixel_space(const asd_georef *g) { return !g || g->tr == NULL; }
int asd_georef_is_affine(const asd_georef *g) { return !g || g->affine; }
const char *asd_georef_method(const asd_georef *g) { return g ? g->method : "PIXEL"; }
OGRSpatialReferenceH asd_georef_srs(const asd_georef *g) { return g ? g->srs : NULL; }

int asd_georef_transform(asd_georef *g, int n, double *x, double *y) {
  if (!g || !g->tr || n <= 0) return 0;
  double *z = CPLCalloc((size_t)n, sizeof(double));
  int *ok = CPLCalloc((size_t)n, sizeof(int));
  double *x0 = CPLMalloc(sizeof(double) * 2 * (size_t)n), *y0 = x0 + n;
  memcpy(x0, x, sizeof(double) * (size_t)n);
  memcpy(y0, y, sizeof(double) * (size_t)n);
  pthread_mutex_lock(&g->lock);
  GDALGenImgProjTransform(g->tr, FALSE, n, x, y, z, ok);
  pthread_mutex_unlock(&g->lock);
  int failed = 0;
  for (int i = 0; i < n; i++) {
    if (!ok[i] || !isfinite(x[i]) || !isfinite(y[i])) {
      x[i] = x0[i];
      y[i] = y0[i];
      failed++;
    }
  }
  CPLFree(x0);
  CPLFree(z);
  CPLFree(ok);
  return failed;
}

OGRGeometryH asd_georef_ring(asd_georef *g, const double *xy, int n) {
  if (!xy || n <= 0) return NULL;
  if (n == 1 || n == 2) {
    double x[2] = {xy[0], n == 2 ? xy[2] : 0}, y[2] = {xy[1], n == 2 ? xy[3] : 0};
    if (asd_georef_transform(g, n, x, y) != 0) return NULL;
    OGRGeometryH geom = OGR_G_CreateGeometry(n == 1 ? wkbPoint : wkbLineString);
    for (int i = 0; i < n; i++) OGR_G_AddPoint_2D(geom, x[i], y[i]);
    if (g && g->srs) OGR_G_AssignSpatialReference(geom, g->srs);
    return geom;
  }
  /* Drop the closing point if given; it is added back after densifying. */
  int m = n;
  if (xy[0] == xy[2 * (n - 1)] && xy[1] == xy[2 * (n - 1) + 1]) m--;
  if (m < 3) return NULL;
  const int densify = g && g->tr && !g->affine && g->densify > 0;
  size_t cap = (size_t)m + 1;
  if (densify) cap = (size_t)m * (size_t)g->max_per_edge + 1;
  double *x = CPLMalloc(sizeof(double) * cap * 2), *y = x + cap;
  size_t k = 0;
  for (int i = 0; i < m; i++) {
    const double ax = xy[2 * i], ay = xy[2 * i + 1];
    const double bx = xy[2 * ((i + 1) % m)], by = xy[2 * ((i + 1) % m) + 1];
    int steps = 1;
    if (densify) {
      double len = hypot(bx - ax, by - ay);
      steps = (int)ceil(len / g->densify);
      if (steps < 1) steps = 1;
      if (steps > g->max_per_edge) steps = g->max_per_edge;
    }
    for (int s = 0; s < steps; s++) {
      double t = (double)s / steps;
      x[k] = ax + t * (bx - ax);
      y[k] = ay + t * (by - ay);
      k++;
    }
  }
  x[k] = x[0];
  y[k] = y[0];
  k++;
  OGRGeometryH poly = NULL;
  if (asd_georef_transform(g, (int)k - 1, x, y) == 0) {
    x[k - 1] = x[0];
    y[k - 1] = y[0];
    poly = OGR_G_CreateGeometry(wkbPolygon);
    OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);
    OGR_G_SetPoints(ring, (int)k, x, sizeof(double), y, sizeof(double), NULL, 0);
    OGR_G_AddGeometryDirectly(poly, ring);
    if (g && g->srs) OGR_G_AssignSpatialReference(poly, g->srs);
  }
  CPLFree(x);
  return poly;
}

OGRGeometryH asd_georef_box(asd_georef *g, double minx, double miny, double maxx, double maxy) {
  /* Clockwise in pixel space (y down) is counter-clockwise on a north-up map. */
  double xy[8] = {minx, miny, minx, maxy, maxx, maxy, maxx, miny};
  return asd_georef_ring(g, xy, 4);
}
