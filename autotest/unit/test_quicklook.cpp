// The quicklook (tiler/quicklook.c): an output written by the writer, drawn
// over a synthetic image: size, each class's colour on its box's edge,
// failed tiles shaded red, the image untouched elsewhere, appended images
// filtered out, Shapefile's cut field names, no .aux.xml, clear errors.
#include <gtest/gtest.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

#include "asyncdetect/asd_features.h"
#include "asyncdetect/asd_georef.h"
#include "asyncdetect/asd_writer.h"
#include "quicklook.h"

namespace {

std::string tmp(const std::string &name) {
  return testing::TempDir() + "/" + std::to_string(getpid()) + "_ql_" + name;
}

// 1000 x 1000, 3 bands of a dark grey (20), UTM 33N.
GDALDatasetH make_image(const char *name) {
  GDALAllRegister();
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("MEM"), name, 1000, 1000, 3, GDT_Byte, nullptr);
  for (int b = 1; b <= 3; b++) GDALFillRaster(GDALGetRasterBand(ds, b), 20, 0);
  double gt[6] = {448000, 0.5, 0, 5411000, 0, -0.5};
  GDALSetGeoTransform(ds, gt);
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, 32633);
  GDALSetSpatialRef(ds, srs);
  OSRDestroySpatialReference(srs);
  return ds;
}

void add_box(asd_writer *w, const char *cls, double x0, double y0, double x1, double y1) {
  asd_detection d;
  memset(&d, 0, sizeof d);
  d.kind = ASD_GEOM_BOX;
  d.minx = x0, d.miny = y0, d.maxx = x1, d.maxy = y1;
  d.class_iri = strdup(cls);
  d.score = d.raw_score = 0.9;
  ASSERT_EQ(0, asd_writer_add_detection(w, &d));
  asd_detection_clear(&d);
}

// A vehicle box at (100..300, 100..200), a building box at (600..800, 100..300),
// tiles: 0..500 x 0..500 succeeded, 500..1000 x 500..1000 failed.
void write_output(const std::string &path, GDALDatasetH src, const char *source, int append) {
  asd_georef *g = asd_georef_new(src, nullptr);
  ASSERT_NE(nullptr, g);
  asd_writer_options o;
  asd_writer_options_init(&o);
  o.overwrite = !append;
  o.append = append;
  o.source_image = source;
  char *side = asd_writer_tiles_sidecar_path(path.c_str());
  o.tiles_fallback_path = side;
  asd_writer *w = asd_writer_open(path.c_str(), &o, g);
  ASSERT_NE(nullptr, w) << CPLGetLastErrorMsg();
  if (!append) {
    add_box(w, "vehicle", 100, 100, 300, 200);
    add_box(w, "building", 600, 100, 800, 300);
  } else {
    add_box(w, "vehicle", 100, 700, 300, 800);  // another image's, not to be drawn
  }
  asd_tile t;
  memset(&t, 0, sizeof t);
  t.w = t.h = 500;
  ASSERT_EQ(0, asd_writer_add_tile(w, &t, ASD_TILE_SUCCEEDED, nullptr, "inf-0", 1));
  t.index = 1, t.x = 500, t.y = 500;
  ASSERT_EQ(0, asd_writer_add_tile(w, &t, ASD_TILE_FAILED, "ModelError", "inf-1", -1));
  ASSERT_EQ(0, asd_writer_close(w));
  asd_georef_free(g);
  CPLFree(side);
}

struct picture {
  int w = 0, h = 0;
  std::string rgb;  // interleaved
  void at(int x, int y, int out[3]) const {
    for (int k = 0; k < 3; k++) out[k] = (unsigned char)rgb[(size_t)(y * w + x) * 3 + k];
  }
};

picture read_png(const std::string &path) {
  picture p;
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  if (!ds) return p;
  EXPECT_STREQ("PNG", GDALGetDriverShortName(GDALGetDatasetDriver(ds)));
  p.w = GDALGetRasterXSize(ds), p.h = GDALGetRasterYSize(ds);
  p.rgb.resize((size_t)p.w * p.h * 3);
  EXPECT_EQ(CE_None, GDALDatasetRasterIO(ds, GF_Read, 0, 0, p.w, p.h, &p.rgb[0], p.w, p.h, GDT_Byte, 3, nullptr, 3,
                                         3 * p.w, 1));
  GDALClose(ds);
  return p;
}

// Whether a pixel within 1 of (x, y) has the colour.
bool colour_near(const picture &p, int x, int y, int r, int g, int b) {
  for (int dy = -1; dy <= 1; dy++)
    for (int dx = -1; dx <= 1; dx++) {
      int c[3];
      p.at(x + dx, y + dy, c);
      if (std::abs(c[0] - r) < 8 && std::abs(c[1] - g) < 8 && std::abs(c[2] - b) < 8) return true;
    }
  return false;
}

asd_quicklook_request request(const std::string &png, int width, GDALDatasetH src, const std::string &out,
                              const char *det_layer, const char *tiles_path, const char *tiles_layer,
                              const char *source) {
  asd_quicklook_request q;
  memset(&q, 0, sizeof q);
  q.png_path = png.c_str();
  q.width = width;
  q.src = src;
  q.det_path = out.c_str();
  q.det_layer = det_layer;
  q.tiles_path = tiles_path;
  q.tiles_layer = tiles_layer;
  q.source_image = source;
  return q;
}

void check_picture(const picture &p) {
  ASSERT_EQ(500, p.w);
  ASSERT_EQ(500, p.h);
  // Sorted classes: building first (cyan), vehicle second (yellow); edges at half scale.
  EXPECT_TRUE(colour_near(p, 350, 50, 0, 229, 255)) << "building's top edge";
  EXPECT_TRUE(colour_near(p, 100, 50, 255, 214, 0)) << "vehicle's top edge";
  EXPECT_FALSE(colour_near(p, 100, 350, 255, 214, 0)) << "the other image's detection is not drawn";
  int c[3];
  p.at(375, 375, c);  // inside the failed tile
  EXPECT_GT(c[0], 100);
  EXPECT_LT(c[1], 30);
  p.at(200, 400, c);  // image only
  EXPECT_EQ(20, c[0]);
  EXPECT_EQ(20, c[1]);
  EXPECT_EQ(20, c[2]);
  p.at(350, 100, c);  // inside the building box: an outline only
  EXPECT_EQ(20, c[0]);
}

}  // namespace

TEST(Quicklook, DrawsDetectionsByClassAndShadesFailedTiles) {
  GDALDatasetH src = make_image("scene_a");
  std::string out = tmp("out.gpkg"), png = tmp("ql.png");
  VSIUnlink(out.c_str());
  write_output(out, src, "scene_a", 0);
  write_output(out, src, "scene_b", 1);
  asd_quicklook_request q = request(png, 500, src, out, "detections", out.c_str(), "tiles", "scene_a");
  ASSERT_EQ(0, asd_quicklook_write(&q)) << CPLGetLastErrorMsg();
  check_picture(read_png(png));
  VSIStatBufL st;
  EXPECT_NE(0, VSIStatL((png + ".aux.xml").c_str(), &st)) << "no georeferencing beside the picture";
  // Never wider than the image.
  q.width = 5000;
  ASSERT_EQ(0, asd_quicklook_write(&q));
  EXPECT_EQ(1000, read_png(png).w);
  VSIUnlink(out.c_str());
  VSIUnlink(png.c_str());
  GDALClose(src);
}

TEST(Quicklook, ShapefileFieldNamesCutToTen) {
  GDALDatasetH src = make_image("scene_a");
  std::string dir = tmp("shp");
  VSIMkdir(dir.c_str(), 0755);
  std::string out = dir + "/out.shp", tiles = dir + "/out_tiles.shp", png = dir + "/ql.png";
  CPLPushErrorHandler(CPLQuietErrorHandler);  // the writer's warnings about cut names
  write_output(out, src, "scene_a", 0);
  CPLPopErrorHandler();
  asd_quicklook_request q = request(png, 500, src, out, nullptr, tiles.c_str(), nullptr, "scene_a");
  ASSERT_EQ(0, asd_quicklook_write(&q)) << CPLGetLastErrorMsg();
  check_picture(read_png(png));
  std::string cmd = "rm -rf '" + dir + "'";
  ASSERT_EQ(0, std::system(cmd.c_str()));
  GDALClose(src);
}

TEST(Quicklook, ErrorsNameTheProblem) {
  GDALDatasetH src = make_image("scene_a");
  std::string out = tmp("err.gpkg");
  VSIUnlink(out.c_str());
  write_output(out, src, "scene_a", 0);
  std::string png = tmp("no-such-dir") + "/ql.png";
  asd_quicklook_request q = request(png, 500, src, out, "detections", nullptr, nullptr, nullptr);
  CPLPushErrorHandler(CPLQuietErrorHandler);
  CPLErrorReset();
  EXPECT_EQ(-1, asd_quicklook_write(&q));
  EXPECT_NE(nullptr, strstr(CPLGetLastErrorMsg(), "no-such-dir")) << CPLGetLastErrorMsg();
  q = request(tmp("ql2.png"), 500, src, out, "nope", nullptr, nullptr, nullptr);
  EXPECT_EQ(-1, asd_quicklook_write(&q));
  EXPECT_NE(nullptr, strstr(CPLGetLastErrorMsg(), "nope")) << CPLGetLastErrorMsg();
  int bad_band = 7;
  q = request(tmp("ql3.png"), 500, src, out, "detections", nullptr, nullptr, nullptr);
  q.bands = &bad_band;
  q.nbands = 1;
  EXPECT_EQ(-1, asd_quicklook_write(&q));
  EXPECT_NE(nullptr, strstr(CPLGetLastErrorMsg(), "band 7")) << CPLGetLastErrorMsg();
  CPLPopErrorHandler();
  VSIUnlink(out.c_str());
  GDALClose(src);
}
