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
 * Geolocation arrays come next.  GCPs beat a geotransform that is only the
 * default one (0,1,0,0,0,1), or its north-up twin (0,1,0,0,0,-1), which
 * some writers store when they have nothing better: such a "geotransform"
 * maps pixels to pixels, and taking it over the GCPs put detections tens of
 * degrees away, where QGIS shows the image by its GCPs.  GCPs are used
 * through METHOD=GCP_POLYNOMIAL (the order GDAL picks from their number, or
 * MAX_GCP_ORDER) unless the caller asks for GCP_TPS.  The caller may force
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
 * Limited domains.  Some transforms do not cover every pixel: the corners
 * of a full-disk geostationary image look past the Earth, an RPC model or a
 * polynomial may diverge far from its fit, a projection may be undefined
 * beyond its area.  A shape with some vertices outside is not dropped:
 * asd_georef_ring_ex walks its densified ring, finds where each edge leaves
 * and re-enters the transformable area by bisection (to 1/64 pixel), joins
 * the two crossings with the straight pixel segment between them, densified
 * and itself trimmed, and returns the transformable part with status
 * ASD_GEOREF_TRIMMED.  A shape none of whose vertices transforms (a tile
 * larger than the disk) is walked from an interior point that does,
 * towards each vertex, as far as the transform goes (star_polygon).  Only a
 * shape with nothing transformable is ASD_GEOREF_FAILED; the writer then
 * keeps it with its image-pixel fields, without a geometry, and counts it
 * (asd_georef_why says why).
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
  char detail[160];           /* e.g. "12 GCPs; the default geotransform ignored" */
  char srs_name[96];          /* "EPSG:4326", the SRS name, or "" */
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

/* The geotransform GDAL reports when there is none, or its north-up twin:
 * pixel coordinates, not a georeferencing. */
static int is_default_gt(const double *gt) {
  return gt[0] == 0 && gt[1] == 1 && gt[2] == 0 && gt[3] == 0 && gt[4] == 0 && (gt[5] == 1 || gt[5] == -1);
}

/* A short name for the output SRS: AUTHORITY:CODE, else its name. */
static void name_srs(asd_georef *g) {
  g->srs_name[0] = '\0';
  if (!g->srs) return;
  const char *auth = OSRGetAuthorityName(g->srs, NULL), *code = OSRGetAuthorityCode(g->srs, NULL);
  if (auth && code)
    snprintf(g->srs_name, sizeof(g->srs_name), "%s:%s", auth, code);
  else if (OSRGetName(g->srs))
    snprintf(g->srs_name, sizeof(g->srs_name), "%s", OSRGetName(g->srs));
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
  const int gt_set = GDALGetGeoTransform(ds, gt) == CE_None;
  const int gcp_count = GDALGetGCPCount(ds);
  const int has_gcps = gcp_count > 0;
  /* A default geotransform next to GCPs is not a georeferencing. */
  const int has_gt = gt_set && !(has_gcps && is_default_gt(gt));
  const int has_rpc = has_domain(ds, "RPC");
  const int has_geoloc = has_domain(ds, "GEOLOCATION");
  const char *forced = CSLFetchNameValue(o->transformer_options, "METHOD");

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
    /* Named always: GDAL's own default would take a default geotransform
     * over the GCPs (see above). */
    to = CSLSetNameValue(to, "METHOD", method);
  }
  snprintf(g->method, sizeof(g->method), "%s", method);
  const int gcp_method = STARTS_WITH_CI(method, "GCP_");
  const char *src_wkt = gcp_method ? GDALGetGCPProjection(ds) : GDALGetProjectionRef(ds);
  if (gcp_method)
    snprintf(g->detail, sizeof(g->detail), "%d GCPs%s", gcp_count,
             gt_set && !has_gt ? "; the default geotransform next to them ignored" : "");
  else if (has_gcps && EQUAL(method, "GEOTRANSFORM"))
    snprintf(g->detail, sizeof(g->detail), "the geotransform; %d GCPs ignored (-to METHOD=GCP_POLYNOMIAL uses them)",
             gcp_count);

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
    name_srs(g);
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

void asd_georef_describe(const asd_georef *g, char *out, size_t size) {
  if (!g || !g->tr) {
    snprintf(out, size, "none (image pixel coordinates)");
    return;
  }
  snprintf(out, size, "%s -> %s%s%s%s", g->method, g->srs_name[0] ? g->srs_name : "the image's own units",
           g->detail[0] ? " (" : "", g->detail, g->detail[0] ? ")" : "");
}

const char *asd_georef_why(const asd_georef *g) {
  static const char *const why = "outside the area where the image's transform to the output SRS is defined";
  (void)g;
  return why;
}

/* Transforms n points in place; ok (may be NULL) receives 1 per point that
 * made it.  A failed point is left unchanged.  Returns the failures. */
static int transform_flags(asd_georef *g, int n, double *x, double *y, int *ok_out) {
  if (!g || !g->tr || n <= 0) {
    for (int i = 0; ok_out && i < n; i++) ok_out[i] = 1;
    return 0;
  }
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
    const int good = ok[i] && isfinite(x[i]) && isfinite(y[i]);
    if (!good) {
      x[i] = x0[i];
      y[i] = y0[i];
      failed++;
    }
    if (ok_out) ok_out[i] = good;
  }
  CPLFree(x0);
  CPLFree(z);
  CPLFree(ok);
  return failed;
}

int asd_georef_transform(asd_georef *g, int n, double *x, double *y) { return transform_flags(g, n, x, y, NULL); }

/* A growing list of output coordinates. */
typedef struct pts {
  double *x, *y;
  size_t n, cap;
} pts;

static void pts_add(pts *p, double x, double y) {
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 64;
    p->x = CPLRealloc(p->x, p->cap * sizeof(double));
    p->y = CPLRealloc(p->y, p->cap * sizeof(double));
  }
  p->x[p->n] = x;
  p->y[p->n] = y;
  p->n++;
}

/* On the pixel segment from a (transformable) to b (not), the last
 * transformable point, to 1/64 pixel: *px, *py in pixels, *ox, *oy its
 * transform. */
static void crossing(asd_georef *g, double ax, double ay, double bx, double by, double *px, double *py, double *ox,
                     double *oy) {
  double gx = ax, gy = ay;
  int ok = 0;
  transform_flags(g, 1, &gx, &gy, &ok);
  while (hypot(bx - ax, by - ay) > 1.0 / 64) {
    const double mx = (ax + bx) / 2, my = (ay + by) / 2;
    double tx = mx, ty = my;
    if (transform_flags(g, 1, &tx, &ty, &ok) == 0) {
      ax = mx, ay = my, gx = tx, gy = ty;
    } else {
      bx = mx, by = my;
    }
  }
  *px = ax, *py = ay, *ox = gx, *oy = gy;
}

/* The straight pixel segment inside the shape from where the ring left
 * the transformable area (e) to where it comes back (b), densified, each
 * point kept if it transforms. */
static void add_chord(asd_georef *g, pts *out, double ex, double ey, double bx, double by) {
  const double spacing = g->densify > 0 ? g->densify : 8;
  int steps = (int)ceil(hypot(bx - ex, by - ey) / spacing);
  if (steps > 4 * g->max_per_edge) steps = 4 * g->max_per_edge;
  if (steps < 2) return;
  double *x = CPLMalloc(sizeof(double) * 2 * (size_t)steps), *y = x + steps;
  int *ok = CPLMalloc(sizeof(int) * (size_t)steps);
  for (int s = 1; s < steps; s++) {
    x[s - 1] = ex + (bx - ex) * s / steps;
    y[s - 1] = ey + (by - ey) * s / steps;
  }
  transform_flags(g, steps - 1, x, y, ok);
  for (int s = 0; s < steps - 1; s++)
    if (ok[s]) pts_add(out, x[s], y[s]);
  CPLFree(ok);
  CPLFree(x);
}

/* The transformable part of a densified pixel ring (px, py; k points, not
 * closed) whose transformed points are gx, gy with flags ok, at least one
 * of them good: see "Limited domains" above.  NULL if nothing with an area
 * remains. */
static OGRGeometryH trimmed_polygon(asd_georef *g, const double *px, const double *py, const double *gx,
                                    const double *gy, const int *ok, size_t k) {
  size_t s0 = 0;
  while (s0 < k && !ok[s0]) s0++;
  pts out = {0};
  double ex = 0, ey = 0, cx, cy, ox, oy;
  for (size_t t = 0; t < k; t++) {
    const size_t i = (s0 + t) % k, j = (i + 1) % k;
    if (ok[i]) {
      pts_add(&out, gx[i], gy[i]);
      if (!ok[j]) {
        crossing(g, px[i], py[i], px[j], py[j], &ex, &ey, &ox, &oy);
        pts_add(&out, ox, oy);
      }
    } else if (ok[j]) {
      crossing(g, px[j], py[j], px[i], py[i], &cx, &cy, &ox, &oy);
      add_chord(g, &out, ex, ey, cx, cy);
      pts_add(&out, ox, oy);
    }
  }
  OGRGeometryH poly = NULL;
  if (out.n >= 3) {
    pts_add(&out, out.x[0], out.y[0]);
    poly = OGR_G_CreateGeometry(wkbPolygon);
    OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);
    OGR_G_SetPoints(ring, (int)out.n, out.x, sizeof(double), out.y, sizeof(double), NULL, 0);
    OGR_G_AddGeometryDirectly(poly, ring);
    if (!(OGR_G_Area(poly) > 0)) {
      OGR_G_DestroyGeometry(poly);
      poly = NULL;
    }
  }
  CPLFree(out.x);
  CPLFree(out.y);
  return poly;
}

/* Whether pixel point (x, y) is inside the ring (k points, not closed). */
static int inside_ring(const double *px, const double *py, size_t k, double x, double y) {
  int in = 0;
  for (size_t i = 0, j = k - 1; i < k; j = i++)
    if ((py[i] > y) != (py[j] > y) && x < (px[j] - px[i]) * (y - py[i]) / (py[j] - py[i]) + px[i]) in = !in;
  return in;
}

/* A ring none of whose vertices transforms may still enclose a
 * transformable area (a tile larger than a geostationary disk).  Find an
 * interior point that transforms (a 9 x 9 grid over the ring's bounds,
 * nearest its middle first) and walk from it towards every vertex as far as
 * the transform goes: the result is the transformable part whenever that
 * part is star-shaped around the point (a disk, an ellipse, a convex area
 * are).  NULL when no interior point transforms. */
static OGRGeometryH star_polygon(asd_georef *g, const double *px, const double *py, size_t k) {
  double minx = px[0], maxx = px[0], miny = py[0], maxy = py[0];
  for (size_t i = 1; i < k; i++) {
    minx = fmin(minx, px[i]), maxx = fmax(maxx, px[i]);
    miny = fmin(miny, py[i]), maxy = fmax(maxy, py[i]);
  }
  const double mx = (minx + maxx) / 2, my = (miny + maxy) / 2;
  double best = HUGE_VAL, ix = 0, iy = 0;
  for (int j = 0; j < 9; j++)
    for (int i = 0; i < 9; i++) {
      double x = minx + (maxx - minx) * (i + 0.5) / 9, y = miny + (maxy - miny) * (j + 0.5) / 9;
      const double d = hypot(x - mx, y - my);
      if (d >= best || !inside_ring(px, py, k, x, y)) continue;
      double tx = x, ty = y;
      if (transform_flags(g, 1, &tx, &ty, NULL) == 0) best = d, ix = x, iy = y;
    }
  if (best == HUGE_VAL) return NULL;
  pts out = {0};
  for (size_t i = 0; i < k; i++) {
    double cx, cy, ox, oy;
    crossing(g, ix, iy, px[i], py[i], &cx, &cy, &ox, &oy);
    pts_add(&out, ox, oy);
  }
  pts_add(&out, out.x[0], out.y[0]);
  OGRGeometryH poly = OGR_G_CreateGeometry(wkbPolygon);
  OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);
  OGR_G_SetPoints(ring, (int)out.n, out.x, sizeof(double), out.y, sizeof(double), NULL, 0);
  OGR_G_AddGeometryDirectly(poly, ring);
  CPLFree(out.x);
  CPLFree(out.y);
  if (!(OGR_G_Area(poly) > 0)) {
    OGR_G_DestroyGeometry(poly);
    return NULL;
  }
  return poly;
}

OGRGeometryH asd_georef_ring_ex(asd_georef *g, const double *xy, int n, asd_georef_status *status) {
  asd_georef_status st_local;
  if (!status) status = &st_local;
  *status = ASD_GEOREF_FAILED;
  if (!xy || n <= 0) return NULL;
  if (n == 1 || n == 2) {
    double x[2] = {xy[0], n == 2 ? xy[2] : 0}, y[2] = {xy[1], n == 2 ? xy[3] : 0};
    if (asd_georef_transform(g, n, x, y) != 0) return NULL;
    OGRGeometryH geom = OGR_G_CreateGeometry(n == 1 ? wkbPoint : wkbLineString);
    for (int i = 0; i < n; i++) OGR_G_AddPoint_2D(geom, x[i], y[i]);
    if (g && g->srs) OGR_G_AssignSpatialReference(geom, g->srs);
    *status = ASD_GEOREF_OK;
    return geom;
  }
  /* Drop the closing point if given; it is added back after densifying. */
  int m = n;
  if (xy[0] == xy[2 * (n - 1)] && xy[1] == xy[2 * (n - 1) + 1]) m--;
  if (m < 3) return NULL;
  const int densify = g && g->tr && !g->affine && g->densify > 0;
  size_t cap = (size_t)m + 1;
  if (densify) cap = (size_t)m * (size_t)g->max_per_edge + 1;
  double *x = CPLMalloc(sizeof(double) * cap * 4), *y = x + cap, *px = y + cap, *py = px + cap;
  int *ok = CPLMalloc(sizeof(int) * cap);
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
  memcpy(px, x, sizeof(double) * k);
  memcpy(py, y, sizeof(double) * k);
  OGRGeometryH poly = NULL;
  const int failed = transform_flags(g, (int)k, x, y, ok);
  if (failed == 0) {
    x[k] = x[0];
    y[k] = y[0];
    poly = OGR_G_CreateGeometry(wkbPolygon);
    OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);
    OGR_G_SetPoints(ring, (int)k + 1, x, sizeof(double), y, sizeof(double), NULL, 0);
    OGR_G_AddGeometryDirectly(poly, ring);
    *status = ASD_GEOREF_OK;
  } else {
    poly = (size_t)failed < k ? trimmed_polygon(g, px, py, x, y, ok, k) : star_polygon(g, px, py, k);
    if (poly) *status = ASD_GEOREF_TRIMMED;
  }
  if (poly && g && g->srs) OGR_G_AssignSpatialReference(poly, g->srs);
  CPLFree(ok);
  CPLFree(x);
  return poly;
}

OGRGeometryH asd_georef_ring(asd_georef *g, const double *xy, int n) { return asd_georef_ring_ex(g, xy, n, NULL); }

OGRGeometryH asd_georef_box_ex(asd_georef *g, double minx, double miny, double maxx, double maxy,
                               asd_georef_status *status) {
  /* Clockwise in pixel space (y down) is counter-clockwise on a north-up map. */
  double xy[8] = {minx, miny, minx, maxy, maxx, maxy, maxx, miny};
  return asd_georef_ring_ex(g, xy, 4, status);
}

OGRGeometryH asd_georef_box(asd_georef *g, double minx, double miny, double maxx, double maxy) {
  return asd_georef_box_ex(g, minx, miny, maxx, maxy, NULL);
}
