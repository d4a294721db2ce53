// Default map styles (tiler/styles.c) written by the writer: layer_styles
// rows in a GeoPackage with QGIS's schema (QML + SLD, default), the classes
// read back from the layer in sorted order, a user's own default style never
// replaced, QGIS style files beside one-layer outputs, ASD_WRITE_STYLES=NO.
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
#include <map>
#include <string>

#include <unistd.h>

#include "asyncdetect/asd_features.h"
#include "asyncdetect/asd_georef.h"
#include "asyncdetect/asd_writer.h"

namespace {

std::string tmp(const std::string &name) {
  return testing::TempDir() + "/" + std::to_string(getpid()) + "_styles_" + name;
}

GDALDatasetH make_utm_raster() {
  GDALAllRegister();
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("MEM"), "utm", 1000, 1000, 1, GDT_Byte, nullptr);
  double gt[6] = {448000, 0.5, 0, 5411000, 0, -0.5};
  GDALSetGeoTransform(ds, gt);
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, 32633);
  GDALSetSpatialRef(ds, srs);
  OSRDestroySpatialReference(srs);
  return ds;
}

// Writes boxes of the given classes (in that order) and three tiles.
void write_output(const std::string &path, asd_georef *g, std::initializer_list<const char *> classes, int append) {
  asd_writer_options o;
  asd_writer_options_init(&o);
  o.overwrite = !append;
  o.append = append;
  char *side = asd_writer_tiles_sidecar_path(path.c_str());
  o.tiles_fallback_path = side;
  asd_writer *w = asd_writer_open(path.c_str(), &o, g);
  ASSERT_NE(nullptr, w) << CPLGetLastErrorMsg();
  int i = 0;
  for (const char *c : classes) {
    asd_detection d;
    memset(&d, 0, sizeof d);
    d.kind = ASD_GEOM_BOX;
    d.minx = 10 + 50 * i, d.miny = 10, d.maxx = 40 + 50 * i, d.maxy = 30;
    d.class_iri = strdup(c);
    d.score = d.raw_score = 0.9;
    ASSERT_EQ(0, asd_writer_add_detection(w, &d));
    asd_detection_clear(&d);
    i++;
  }
  asd_tile t;
  memset(&t, 0, sizeof t);
  t.w = t.h = 512;
  ASSERT_EQ(0, asd_writer_add_tile(w, &t, ASD_TILE_SUCCEEDED, nullptr, "inf-0", 1));
  t.index = 1, t.x = 488;
  ASSERT_EQ(0, asd_writer_add_tile(w, &t, ASD_TILE_FAILED, "ModelError: boom", "inf-1", -1));
  t.index = 2, t.y = 488;
  ASSERT_EQ(0, asd_writer_add_tile(w, &t, ASD_TILE_SKIPPED, "nodata", nullptr, 0));
  ASSERT_EQ(0, asd_writer_close(w));
  CPLFree(side);
}

struct style_row {
  std::string name, qml, sld;
  int is_default;
};

// layer_styles rows by "table/styleName".
std::map<std::string, style_row> style_rows(const std::string &gpkg) {
  std::map<std::string, style_row> rows;
  GDALDatasetH ds = GDALOpenEx(gpkg.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  if (!ds) return rows;
  OGRLayerH t = GDALDatasetGetLayerByName(ds, "layer_styles");
  if (t) {
    OGRFeatureDefnH d = OGR_L_GetLayerDefn(t);
    OGRFeatureH f;
    while ((f = OGR_L_GetNextFeature(t)) != nullptr) {
      std::string key = std::string(OGR_F_GetFieldAsString(f, OGR_FD_GetFieldIndex(d, "f_table_name"))) + "/" +
                        OGR_F_GetFieldAsString(f, OGR_FD_GetFieldIndex(d, "styleName"));
      rows[key] = {OGR_F_GetFieldAsString(f, OGR_FD_GetFieldIndex(d, "styleName")),
                   OGR_F_GetFieldAsString(f, OGR_FD_GetFieldIndex(d, "styleQML")),
                   OGR_F_GetFieldAsString(f, OGR_FD_GetFieldIndex(d, "styleSLD")),
                   OGR_F_GetFieldAsInteger(f, OGR_FD_GetFieldIndex(d, "useAsDefault"))};
      EXPECT_STREQ("geom", OGR_F_GetFieldAsString(f, OGR_FD_GetFieldIndex(d, "f_geometry_column")));
      OGR_F_Destroy(f);
    }
  }
  GDALClose(ds);
  return rows;
}

std::string slurp(const std::string &path) {
  std::string s;
  VSILFILE *f = VSIFOpenL(path.c_str(), "rb");
  if (!f) return s;
  char buf[4096];
  size_t n;
  while ((n = VSIFReadL(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  VSIFCloseL(f);
  return s;
}

bool exists(const std::string &path) {
  VSIStatBufL st;
  return VSIStatL(path.c_str(), &st) == 0;
}

}  // namespace

TEST(Styles, GeoPackageGetsDefaultStylesWithQgisSchema) {
  GDALDatasetH src = make_utm_raster();
  asd_georef *g = asd_georef_new(src, nullptr);
  std::string path = tmp("out.gpkg");
  VSIUnlink(path.c_str());
  write_output(path, g, {"vehicle", "building", "vehicle"}, 0);

  auto rows = style_rows(path);
  ASSERT_EQ(2u, rows.size());
  const style_row &det = rows["detections/asyncdetect"];
  EXPECT_EQ(1, det.is_default);
  // Categorized by class, outlines only, classes in sorted order: building
  // takes the first colour (cyan), vehicle the second (yellow).
  EXPECT_NE(std::string::npos, det.qml.find("type=\"categorizedSymbol\" attr=\"class\""));
  size_t b = det.qml.find("value=\"building\""), v = det.qml.find("value=\"vehicle\"");
  ASSERT_NE(std::string::npos, b);
  ASSERT_NE(std::string::npos, v);
  EXPECT_LT(b, v);
  EXPECT_NE(std::string::npos, det.qml.find("<prop k=\"outline_color\" v=\"0,229,255,255\"/>"));
  EXPECT_NE(std::string::npos, det.qml.find("<prop k=\"outline_color\" v=\"255,214,0,255\"/>"));
  EXPECT_NE(std::string::npos, det.qml.find("<prop k=\"style\" v=\"no\"/>"));
  EXPECT_NE(std::string::npos, det.sld.find("<ogc:Literal>vehicle</ogc:Literal>"));
  EXPECT_NE(std::string::npos, det.sld.find("<se:Name>detections</se:Name>"));

  const style_row &tiles = rows["tiles/asyncdetect"];
  EXPECT_EQ(1, tiles.is_default);
  EXPECT_NE(std::string::npos, tiles.qml.find("attr=\"status\""));
  for (const char *s : {"failed", "succeeded", "skipped"})
    EXPECT_NE(std::string::npos, tiles.qml.find(std::string("value=\"") + s + "\"")) << s;
  EXPECT_NE(std::string::npos, tiles.sld.find("<ogc:Literal>failed</ogc:Literal>"));

  // Overwritten: still one row per layer, with the new run's classes.
  write_output(path, g, {"ship"}, 0);
  rows = style_rows(path);
  ASSERT_EQ(2u, rows.size());
  EXPECT_NE(std::string::npos, rows["detections/asyncdetect"].qml.find("value=\"ship\""));
  EXPECT_EQ(std::string::npos, rows["detections/asyncdetect"].qml.find("value=\"vehicle\""));

  // Appended: the legend covers every class in the layer.
  write_output(path, g, {"aircraft"}, 1);
  rows = style_rows(path);
  EXPECT_NE(std::string::npos, rows["detections/asyncdetect"].qml.find("value=\"ship\""));
  EXPECT_NE(std::string::npos, rows["detections/asyncdetect"].qml.find("value=\"aircraft\""));
  VSIUnlink(path.c_str());
  asd_georef_free(g);
  GDALClose(src);
}

TEST(Styles, AUsersDefaultStyleIsKept) {
  GDALDatasetH src = make_utm_raster();
  asd_georef *g = asd_georef_new(src, nullptr);
  std::string path = tmp("user.gpkg");
  VSIUnlink(path.c_str());
  write_output(path, g, {"building"}, 0);
  GDALDatasetH ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR | GDAL_OF_UPDATE, nullptr, nullptr, nullptr);
  ASSERT_NE(nullptr, ds);
  OGRLayerH r = GDALDatasetExecuteSQL(
      ds,
      "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName, "
      "styleQML, styleSLD, useAsDefault) VALUES ('', '', 'detections', 'geom', 'mine', '<qgis/>', '', 1)",
      nullptr, nullptr);
  if (r) GDALDatasetReleaseResultSet(ds, r);
  GDALClose(ds);

  write_output(path, g, {"vehicle"}, 1);
  auto rows = style_rows(path);
  EXPECT_EQ(1, rows["detections/mine"].is_default);
  EXPECT_EQ("<qgis/>", rows["detections/mine"].qml);
  EXPECT_EQ(0, rows["detections/asyncdetect"].is_default) << "ours is there, not the default";
  EXPECT_NE(std::string::npos, rows["detections/asyncdetect"].qml.find("value=\"vehicle\""));
  EXPECT_EQ(1, rows["tiles/asyncdetect"].is_default);
  VSIUnlink(path.c_str());
  asd_georef_free(g);
  GDALClose(src);
}

TEST(Styles, OneLayerFilesGetAQgisStyleFileBeside) {
  GDALDatasetH src = make_utm_raster();
  asd_georef *g = asd_georef_new(src, nullptr);
  for (const char *ext : {"geojson", "shp", "fgb"}) {
    std::string dir = tmp(std::string("dir_") + ext);
    VSIMkdir(dir.c_str(), 0755);
    std::string out = dir + "/ships." + ext;
    write_output(out, g, {"vehicle", "building"}, 0);
    std::string det = slurp(dir + "/ships.qml"), tiles = slurp(dir + "/ships_tiles.qml");
    EXPECT_NE(std::string::npos, det.find("value=\"building\"")) << ext;
    EXPECT_NE(std::string::npos, det.find("value=\"vehicle\"")) << ext;
    EXPECT_NE(std::string::npos, tiles.find("value=\"failed\"")) << ext;
    // A style file of the user's own is never replaced; ours is.
    VSILFILE *f = VSIFOpenL((dir + "/ships.qml").c_str(), "wb");
    ASSERT_NE(nullptr, f);
    VSIFWriteL("<qgis/>", 1, 7, f);
    VSIFCloseL(f);
    write_output(out, g, {"ship"}, 0);
    EXPECT_EQ("<qgis/>", slurp(dir + "/ships.qml")) << ext;
    EXPECT_NE(std::string::npos, slurp(dir + "/ships_tiles.qml").find("value=\"skipped\"")) << ext;
    std::string cmd = "rm -rf '" + dir + "'";
    ASSERT_EQ(0, std::system(cmd.c_str()));
  }
  asd_georef_free(g);
  GDALClose(src);
}

TEST(Styles, ConfigOptionTurnsThemOff) {
  GDALDatasetH src = make_utm_raster();
  asd_georef *g = asd_georef_new(src, nullptr);
  CPLSetConfigOption("ASD_WRITE_STYLES", "NO");
  std::string path = tmp("off.gpkg");
  VSIUnlink(path.c_str());
  write_output(path, g, {"building"}, 0);
  std::string dir = tmp("off_dir");
  VSIMkdir(dir.c_str(), 0755);
  write_output(dir + "/ships.geojson", g, {"building"}, 0);
  CPLSetConfigOption("ASD_WRITE_STYLES", nullptr);
  EXPECT_TRUE(style_rows(path).empty());
  GDALDatasetH ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  ASSERT_NE(nullptr, ds);
  EXPECT_EQ(nullptr, GDALDatasetGetLayerByName(ds, "layer_styles"));
  GDALClose(ds);
  EXPECT_FALSE(exists(dir + "/ships.qml"));
  EXPECT_FALSE(exists(dir + "/ships_tiles.qml"));
  VSIUnlink(path.c_str());
  std::string cmd = "rm -rf '" + dir + "'";
  ASSERT_EQ(0, std::system(cmd.c_str()));
  asd_georef_free(g);
  GDALClose(src);
}
