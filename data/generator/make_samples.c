/*
 * make_samples.c: writes gdal_asyncdetect's sample data and its ground truth.
 *
 *   asd_make_samples OUTDIR
 *
 * One scene (scene.c) is built in memory and written five ways:
 *   scene_utm.tif     3 x Byte, EPSG:32633, 0.5 m, tiled, DEFLATE + predictor
 *   scene_rpc.ntf     the same pixels in NITF, JPEG 2000 numerically lossless
 *                     (IC=C8), no IGEOLO and no geotransform: RPC00B only
 *   scene_u16.tif     4 x UInt16 (R, G, B, NIR), 11-bit values (0..2047)
 *   scene_nodata.tif  scene_utm.tif with a block of whole tiles set to
 *                     nodata (value 0) and masked (internal mask band)
 *   ground_truth.geojson  one feature per object: EPSG:4326 footprint,
 *                     id, class, pixel footprint, pixel bbox, ...
 *
 * The output must be byte-for-byte reproducible, so nothing time- or
 * host-dependent is written: PAM side-car files are disabled, NITF date
 * fields are fixed, GeoTIFF writes no DateTime tag unless asked, and the
 * GeoJSON is printed with fixed precision in a fixed order.  Existing
 * outputs are deleted first so that stale side-car files cannot linger.
 */
#include "samples.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpl_conv.h"
#include "cpl_string.h"
#include "cpl_vsi.h"
#include "gdal.h"
#include "ogr_srs_api.h"

typedef struct {
  OGRCoordinateTransformationH to_ll;   /* UTM -> lon/lat */
  OGRCoordinateTransformationH to_utm;  /* lon/lat -> UTM */
} georef_t;

static const double k_gt[6] = {SCENE_ORIGIN_E, SCENE_PIXEL, 0.0, SCENE_ORIGIN_N, 0.0, -SCENE_PIXEL};

static int pixel_to_ll(georef_t *g, double px, double py, double *lon, double *lat) {
  double x = k_gt[0] + px * k_gt[1], y = k_gt[3] + py * k_gt[5], z = 0;
  if (!OCTTransform(g->to_ll, 1, &x, &y, &z)) return -1;
  *lon = x;
  *lat = y;
  return 0;
}

static int ll_to_pixel(void *ctx, double lon, double lat, double *px, double *py) {
  georef_t *g = ctx;
  double x = lon, y = lat, z = 0;
  if (!OCTTransform(g->to_utm, 1, &x, &y, &z)) return -1;
  *px = (x - k_gt[0]) / k_gt[1];
  *py = (y - k_gt[3]) / k_gt[5];
  return 0;
}

static char *join(const char *dir, const char *name) {
  return CPLStrdup(CPLFormFilename(dir, name, NULL));
}

static void remove_output(const char *path) {
  VSIStatBufL st;
  if (VSIStatL(path, &st) == 0) VSIUnlink(path);
  char *aux = CPLStrdup(CPLSPrintf("%s.aux.xml", path));
  if (VSIStatL(aux, &st) == 0) VSIUnlink(aux);
  CPLFree(aux);
}

/* A MEM dataset holding `nb` planes of `type` pixels copied from `planes`. */
static GDALDatasetH mem_dataset(int nb, GDALDataType type, const void *const *planes) {
  GDALDriverH mem = GDALGetDriverByName("MEM");
  GDALDatasetH ds = GDALCreate(mem, "", SCENE_W, SCENE_H, nb, type, NULL);
  if (!ds) return NULL;
  for (int b = 0; b < nb; b++) {
    GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
    if (GDALRasterIO(band, GF_Write, 0, 0, SCENE_W, SCENE_H, (void *)planes[b], SCENE_W, SCENE_H, type, 0, 0) !=
        CE_None) {
      GDALClose(ds);
      return NULL;
    }
  }
  return ds;
}

static void set_rgb_interp(GDALDatasetH ds) {
  GDALSetRasterColorInterpretation(GDALGetRasterBand(ds, 1), GCI_RedBand);
  GDALSetRasterColorInterpretation(GDALGetRasterBand(ds, 2), GCI_GreenBand);
  GDALSetRasterColorInterpretation(GDALGetRasterBand(ds, 3), GCI_BlueBand);
}

static void set_georef(GDALDatasetH ds, OGRSpatialReferenceH utm) {
  char *wkt = NULL;
  OSRExportToWkt(utm, &wkt);
  GDALSetProjection(ds, wkt);
  CPLFree(wkt);
  GDALSetGeoTransform(ds, (double *)k_gt);
}

static int copy_to(GDALDatasetH src, const char *driver, const char *path, char **opts) {
  remove_output(path);
  GDALDatasetH out = GDALCreateCopy(GDALGetDriverByName(driver), path, src, FALSE, opts, NULL, NULL);
  if (!out) {
    fprintf(stderr, "asd_make_samples: cannot write %s: %s\n", path, CPLGetLastErrorMsg());
    return -1;
  }
  GDALClose(out);
  return 0;
}

static char **tiff_options(void) {
  char **o = NULL;
  o = CSLSetNameValue(o, "TILED", "YES");
  o = CSLSetNameValue(o, "BLOCKXSIZE", "256");
  o = CSLSetNameValue(o, "BLOCKYSIZE", "256");
  o = CSLSetNameValue(o, "COMPRESS", "DEFLATE");
  o = CSLSetNameValue(o, "PREDICTOR", "2");
  o = CSLSetNameValue(o, "ZLEVEL", "9");
  return o;
}

static int write_utm(const asd_scene *s, const char *dir, OGRSpatialReferenceH utm) {
  size_t plane = (size_t)SCENE_W * SCENE_H;
  const void *planes[3] = {s->rgb, s->rgb + plane, s->rgb + 2 * plane};
  GDALDatasetH ds = mem_dataset(3, GDT_Byte, planes);
  if (!ds) return -1;
  set_rgb_interp(ds);
  set_georef(ds, utm);
  char *path = join(dir, "scene_utm.tif");
  char **o = tiff_options();
  int rc = copy_to(ds, "GTiff", path, o);
  CSLDestroy(o);
  CPLFree(path);
  GDALClose(ds);
  return rc;
}

/* 8-bit to 11-bit: v * 2047 / 255 rounded, so 255 maps to 2047 and a
 * linear stretch back to 8 bits recovers every value exactly. */
static uint16_t to11(unsigned char v) { return (uint16_t)((v * 2047 + 127) / 255); }

static int write_u16(const asd_scene *s, const char *dir, OGRSpatialReferenceH utm) {
  size_t plane = (size_t)SCENE_W * SCENE_H;
  uint16_t *buf = malloc(3 * plane * sizeof(uint16_t));
  if (!buf) return -1;
  for (size_t i = 0; i < 3 * plane; i++) buf[i] = to11(s->rgb[i]);
  const void *planes[4] = {buf, buf + plane, buf + 2 * plane, s->nir};
  GDALDatasetH ds = mem_dataset(4, GDT_UInt16, planes);
  free(buf);
  if (!ds) return -1;
  set_rgb_interp(ds);
  GDALSetRasterColorInterpretation(GDALGetRasterBand(ds, 4), GCI_Undefined);
  GDALSetDescription(GDALGetRasterBand(ds, 1), "red");
  GDALSetDescription(GDALGetRasterBand(ds, 2), "green");
  GDALSetDescription(GDALGetRasterBand(ds, 3), "blue");
  GDALSetDescription(GDALGetRasterBand(ds, 4), "nir");
  set_georef(ds, utm);
  char *path = join(dir, "scene_u16.tif");
  char **o = tiff_options();
  o = CSLSetNameValue(o, "PHOTOMETRIC", "MINISBLACK");
  o = CSLSetNameValue(o, "INTERLEAVE", "BAND");
  int rc = copy_to(ds, "GTiff", path, o);
  CSLDestroy(o);
  CPLFree(path);
  GDALClose(ds);
  return rc;
}

static int write_nodata(const asd_scene *s, const char *dir, OGRSpatialReferenceH utm) {
  size_t plane = (size_t)SCENE_W * SCENE_H;
  unsigned char *buf = malloc(3 * plane);
  unsigned char *mask = malloc(plane);
  if (!buf || !mask) {
    free(buf);
    free(mask);
    return -1;
  }
  memcpy(buf, s->rgb, 3 * plane);
  memset(mask, 255, plane);
  for (int y = NODATA_Y0; y < NODATA_Y1; y++)
    for (int x = NODATA_X0; x < NODATA_X1; x++) {
      size_t idx = (size_t)y * SCENE_W + (size_t)x;
      buf[idx] = buf[plane + idx] = buf[2 * plane + idx] = 0;
      mask[idx] = 0;
    }
  const void *planes[3] = {buf, buf + plane, buf + 2 * plane};
  GDALDatasetH ds = mem_dataset(3, GDT_Byte, planes);
  free(buf);
  if (!ds) {
    free(mask);
    return -1;
  }
  set_rgb_interp(ds);
  set_georef(ds, utm);
  for (int b = 1; b <= 3; b++) GDALSetRasterNoDataValue(GDALGetRasterBand(ds, b), 0);
  int rc = -1;
  if (GDALCreateDatasetMaskBand(ds, GMF_PER_DATASET) == CE_None) {
    GDALRasterBandH mb = GDALGetMaskBand(GDALGetRasterBand(ds, 1));
    if (GDALRasterIO(mb, GF_Write, 0, 0, SCENE_W, SCENE_H, mask, SCENE_W, SCENE_H, GDT_Byte, 0, 0) == CE_None) {
      char *path = join(dir, "scene_nodata.tif");
      char **o = tiff_options();
      rc = copy_to(ds, "GTiff", path, o);
      CSLDestroy(o);
      CPLFree(path);
    }
  }
  free(mask);
  GDALClose(ds);
  return rc;
}

static void set_rpc_metadata(GDALDatasetH ds, const asd_rpc *r) {
  char **md = NULL;
  md = CSLSetNameValue(md, "LINE_OFF", CPLSPrintf("%.0f", r->line_off));
  md = CSLSetNameValue(md, "SAMP_OFF", CPLSPrintf("%.0f", r->samp_off));
  md = CSLSetNameValue(md, "LAT_OFF", CPLSPrintf("%.4f", r->lat_off));
  md = CSLSetNameValue(md, "LONG_OFF", CPLSPrintf("%.4f", r->long_off));
  md = CSLSetNameValue(md, "HEIGHT_OFF", CPLSPrintf("%.0f", r->height_off));
  md = CSLSetNameValue(md, "LINE_SCALE", CPLSPrintf("%.0f", r->line_scale));
  md = CSLSetNameValue(md, "SAMP_SCALE", CPLSPrintf("%.0f", r->samp_scale));
  md = CSLSetNameValue(md, "LAT_SCALE", CPLSPrintf("%.4f", r->lat_scale));
  md = CSLSetNameValue(md, "LONG_SCALE", CPLSPrintf("%.4f", r->long_scale));
  md = CSLSetNameValue(md, "HEIGHT_SCALE", CPLSPrintf("%.0f", r->height_scale));
  md = CSLSetNameValue(md, "ERR_BIAS", "0.5");
  md = CSLSetNameValue(md, "ERR_RAND", "0.1");
  const char *keys[4] = {"LINE_NUM_COEFF", "LINE_DEN_COEFF", "SAMP_NUM_COEFF", "SAMP_DEN_COEFF"};
  const double *vals[4] = {r->line_num, r->line_den, r->samp_num, r->samp_den};
  for (int k = 0; k < 4; k++) {
    char text[20 * 16 + 1] = "";
    for (int i = 0; i < 20; i++) {
      char c[16];
      rpc_format_coeff(vals[k][i], c);
      if (i) strcat(text, " ");
      strcat(text, c);
    }
    md = CSLSetNameValue(md, keys[k], text);
  }
  GDALSetMetadata(ds, md, "RPC");
  CSLDestroy(md);
}

static int write_nitf(const asd_scene *s, const char *dir, const asd_rpc *rpc) {
  size_t plane = (size_t)SCENE_W * SCENE_H;
  const void *planes[3] = {s->rgb, s->rgb + plane, s->rgb + 2 * plane};
  GDALDatasetH ds = mem_dataset(3, GDT_Byte, planes);
  if (!ds) return -1;
  set_rgb_interp(ds);
  set_rpc_metadata(ds, rpc);
  char **o = NULL;
  o = CSLSetNameValue(o, "IC", "C8");
  o = CSLSetNameValue(o, "JPEG2000_DRIVER", "JP2OpenJPEG");
  o = CSLSetNameValue(o, "PROFILE", "NPJE_NUMERICALLY_LOSSLESS");
  o = CSLSetNameValue(o, "FDT", "20260101000000");
  o = CSLSetNameValue(o, "IDATIM", "20260101000000");
  o = CSLSetNameValue(o, "FTITLE", "gdal_asyncdetect sample scene (RPC only)");
  o = CSLSetNameValue(o, "RPC00B", "YES");
  char *path = join(dir, "scene_rpc.ntf");
  int rc = copy_to(ds, "NITF", path, o);
  CSLDestroy(o);
  CPLFree(path);
  GDALClose(ds);
  return rc;
}

static double snap(double v, double q) { /* avoid "-0.0000" */
  return fabs(v) < q ? 0.0 : v;
}

static int write_ground_truth(const asd_scene *s, const char *dir, georef_t *g) {
  char *path = join(dir, "ground_truth.geojson");
  remove_output(path);
  VSILFILE *f = VSIFOpenL(path, "wb");
  if (!f) {
    fprintf(stderr, "asd_make_samples: cannot create %s\n", path);
    CPLFree(path);
    return -1;
  }
  VSIFPrintfL(f, "{\n\"type\": \"FeatureCollection\",\n\"name\": \"ground_truth\",\n");
  VSIFPrintfL(f, "\"image\": {\"width\": %d, \"height\": %d, \"crs\": \"EPSG:%d\", "
                 "\"geotransform\": [%.1f, %.1f, 0.0, %.1f, 0.0, %.1f], \"seed\": %llu, "
                 "\"nodata_block\": [%d, %d, %d, %d]},\n",
              SCENE_W, SCENE_H, SCENE_EPSG, k_gt[0], k_gt[1], k_gt[3], k_gt[5],
              (unsigned long long)SCENE_SEED, NODATA_X0, NODATA_Y0, NODATA_X1, NODATA_Y1);
  VSIFPrintfL(f, "\"features\": [\n");
  int rc = 0;
  for (int i = 0; i < s->nobj; i++) {
    const asd_object *o = &s->obj[i];
    VSIFPrintfL(f, "{\"type\": \"Feature\", \"id\": %d, \"properties\": {\"id\": %d, \"class\": \"%s\", "
                   "\"shape\": \"%s\", \"pixel_bbox\": [%d, %d, %d, %d], \"pixel_count\": %ld, "
                   "\"rgb\": [%d, %d, %d], \"angle_deg\": %.1f, \"in_nodata_block\": %s, "
                   "\"placement\": \"%s\", \"pixel_footprint\": [[",
                o->id, o->id, scene_class_name(o->cls), scene_shape_name(o->shape), o->bbox[0], o->bbox[1],
                o->bbox[2], o->bbox[3], o->npix, o->rgb[0], o->rgb[1], o->rgb[2], o->angle_deg,
                o->in_nodata ? "true" : "false", o->placement);
    for (int v = 0; v <= o->nverts; v++) {
      int k = v % o->nverts;
      VSIFPrintfL(f, "%s[%.4f, %.4f]", v ? ", " : "", snap(o->vx[k], 5e-5), snap(o->vy[k], 5e-5));
    }
    VSIFPrintfL(f, "]]}, \"geometry\": {\"type\": \"Polygon\", \"coordinates\": [[");
    for (int v = 0; v <= o->nverts; v++) {
      int k = v % o->nverts;
      double lon = 0, lat = 0;
      if (pixel_to_ll(g, o->vx[k], o->vy[k], &lon, &lat) != 0) rc = -1;
      VSIFPrintfL(f, "%s[%.9f, %.9f]", v ? ", " : "", lon, lat);
    }
    VSIFPrintfL(f, "]]}}%s\n", i + 1 < s->nobj ? "," : "");
  }
  VSIFPrintfL(f, "]\n}\n");
  if (VSIFCloseL(f) != 0) rc = -1;
  CPLFree(path);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: asd_make_samples OUTDIR\n"
                    "Writes scene_utm.tif, scene_rpc.ntf, scene_u16.tif, scene_nodata.tif and\n"
                    "ground_truth.geojson into OUTDIR (deterministic; see data/README.md).\n");
    return 2;
  }
  const char *dir = argv[1];
  VSIStatBufL st;
  if (VSIStatL(dir, &st) != 0 || !VSI_ISDIR(st.st_mode)) {
    fprintf(stderr, "asd_make_samples: %s is not a directory\n", dir);
    return 1;
  }
  CPLSetConfigOption("GDAL_PAM_ENABLED", "NO");
  CPLSetConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES");
  GDALAllRegister();

  static asd_scene scene;
  if (scene_build(&scene) != 0) return 1;

  OGRSpatialReferenceH utm = OSRNewSpatialReference(NULL), wgs = OSRNewSpatialReference(NULL);
  OSRImportFromEPSG(utm, SCENE_EPSG);
  OSRImportFromEPSG(wgs, 4326);
  OSRSetAxisMappingStrategy(utm, OAMS_TRADITIONAL_GIS_ORDER);
  OSRSetAxisMappingStrategy(wgs, OAMS_TRADITIONAL_GIS_ORDER);
  georef_t g = {OCTNewCoordinateTransformation(utm, wgs), OCTNewCoordinateTransformation(wgs, utm)};
  int rc = 1;
  if (!g.to_ll || !g.to_utm) {
    fprintf(stderr, "asd_make_samples: cannot create the UTM <-> WGS 84 transformation\n");
    goto done;
  }

  /* The lon/lat extent of the image, from its corners and edge midpoints. */
  double lon_min = 1e9, lon_max = -1e9, lat_min = 1e9, lat_max = -1e9;
  for (int j = 0; j <= 2; j++)
    for (int i = 0; i <= 2; i++) {
      double lon, lat;
      if (pixel_to_ll(&g, SCENE_W * i / 2.0, SCENE_H * j / 2.0, &lon, &lat) != 0) goto done;
      lon_min = fmin(lon_min, lon); lon_max = fmax(lon_max, lon);
      lat_min = fmin(lat_min, lat); lat_max = fmax(lat_max, lat);
    }
  asd_rpc rpc;
  if (rpc_fit(&rpc, lon_min, lon_max, lat_min, lat_max, ll_to_pixel, &g) != 0) goto done;

  if (write_utm(&scene, dir, utm) || write_nitf(&scene, dir, &rpc) || write_u16(&scene, dir, utm) ||
      write_nodata(&scene, dir, utm) || write_ground_truth(&scene, dir, &g))
    goto done;

  int nb = 0, nv = 0, nn = 0;
  for (int i = 0; i < scene.nobj; i++) {
    if (scene.obj[i].cls == CLASS_BUILDING) nb++; else nv++;
    if (scene.obj[i].in_nodata) nn++;
  }
  printf("asd_make_samples: %d objects (%d buildings, %d vehicles; %d inside the nodata block) in %s\n",
         scene.nobj, nb, nv, nn, dir);
  printf("asd_make_samples: RPC fit residual with written coefficients: max %.2e px, rms %.2e px (fit grid); "
         "max %.2e px (check grid)\n",
         rpc.max_residual_px, rpc.rms_residual_px, rpc.max_check_px);
  rc = 0;
done:
  if (g.to_ll) OCTDestroyCoordinateTransformation(g.to_ll);
  if (g.to_utm) OCTDestroyCoordinateTransformation(g.to_utm);
  OSRDestroySpatialReference(utm);
  OSRDestroySpatialReference(wgs);
  scene_free(&scene);
  GDALDestroyDriverManager();
  return rc;
}
