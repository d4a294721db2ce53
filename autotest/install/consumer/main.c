/*
 * A downstream program, as a GDAL pipeline would write it: it links the
 * installed library and runs asd_detect() in-process on a MEM dataset (which
 * the library cannot reopen by name, so it must share this handle) against
 * the endpoint named by the standard AWS environment.
 *
 *   consumer ENDPOINT INPUT_BUCKET OUT.gpkg
 *
 * The raster holds bright squares on a dark ground, which the local
 * endpoint's `blobs` model finds; the program checks that the run succeeded
 * and kept detections, so a broken install (missing header, missing symbol,
 * wrong include path, a library that reopens MEM datasets) fails here.
 */
#include <stdio.h>
#include <string.h>

#include <asyncdetect/asd_app.h>
#include <asyncdetect/asd_common.h>
#include <cpl_conv.h>
#include <gdal.h>

static GDALDatasetH make_scene(void) {
  GDALDriverH mem = GDALGetDriverByName("MEM");
  GDALDatasetH ds = GDALCreate(mem, "", 800, 600, 3, GDT_Byte, NULL);
  if (!ds) return NULL;
  double gt[6] = {448000, 0.5, 0, 5411000, 0, -0.5};
  GDALSetGeoTransform(ds, gt);
  GDALSetProjection(ds, "EPSG:32633");
  static unsigned char block[40 * 40];
  memset(block, 230, sizeof block);
  for (int b = 1; b <= 3; b++) {
    GDALRasterBandH band = GDALGetRasterBand(ds, b);
    GDALFillRaster(band, 20, 0);
    for (int k = 0; k < 6; k++) {
      int x = 60 + k * 120, y = 80 + (k % 3) * 170;
      if (GDALRasterIO(band, GF_Write, x, y, 40, 40, block, 40, 40, GDT_Byte, 0, 0) != CE_None) return NULL;
    }
  }
  return ds;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: consumer ENDPOINT INPUT_BUCKET OUT.gpkg\n");
    return 2;
  }
  GDALAllRegister();
  GDALDatasetH src = make_scene();
  if (!src) {
    fprintf(stderr, "consumer: cannot make the MEM scene\n");
    return 1;
  }
  char *args[] = {"-endpoint", argv[1], "-input-bucket", argv[2], "-tile-size", "256", "-overlap", "32",
                  "-polling-interval", "0.05", "-max-polling-interval", "0.3", NULL};
  asd_detect_options *o = asd_detect_options_new(args, NULL);
  if (!o) return 1;
  asd_detect_summary s;
  int usage = 0;
  int status = asd_detect(argv[3], src, o, &s, &usage);
  asd_detect_options_free(o);
  GDALClose(src);
  char *text = asd_detect_summary_format(&s);
  printf("asyncdetect %s\n%s", asd_version(), text);
  CPLFree(text);
  if (status != ASD_DETECT_OK) {
    fprintf(stderr, "consumer: asd_detect returned %d\n", status);
    return 1;
  }
  if (s.tiles_succeeded < 2 || s.features_kept < 1) {
    fprintf(stderr, "consumer: expected detections, got %lld\n", s.features_kept);
    return 1;
  }
  return 0;
}
