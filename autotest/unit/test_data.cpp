// Unit tests for the committed sample data (data/) and its generator.
//
// These tests are the contract other modules rely on: the blobs model, the
// tiler and the end-to-end tests all assume that data/ground_truth.geojson
// describes exactly the bright pixels of the scenes, that the NITF is
// georeferenced by RPCs alone and agrees with the GeoTIFF, that the 16-bit
// variant really is 11-bit, that the nodata variant's block is nodata and
// masked, and that the generator reproduces every file byte for byte.
#include <gtest/gtest.h>

#include <json-c/json.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "asd_test_paths.h"
#include "cpl_conv.h"
#include "cpl_string.h"
#include "gdal.h"
#include "gdal_alg.h"
#include "ogr_srs_api.h"

namespace {

const int kW = 3000, kH = 2000;
const int kBright = 170;     // the blobs model's threshold
const int kBackground = 140; // contract: background <= 140 in every band
const int kNodataBlock[4] = {1536, 0, 2560, 1024};

struct GtObject {
  int id = 0;
  std::string cls, shape;
  int bbox[4] = {0, 0, 0, 0};
  long count = 0;
  bool in_nodata = false;
  std::vector<std::pair<double, double>> footprint;  // pixels, closed ring
  std::vector<std::pair<double, double>> lonlat;     // geometry, closed ring
};

std::string data_file(const char *name) { return asd_test::data_dir() + "/" + name; }

class GdalInit {
 public:
  GdalInit() {
    // Reading must never leave side-car files in data/.
    CPLSetConfigOption("GDAL_PAM_ENABLED", "NO");
    GDALAllRegister();
  }
};
const GdalInit g_gdal_init;

struct DsCloser {
  void operator()(void *ds) const {
    if (ds) GDALClose(static_cast<GDALDatasetH>(ds));
  }
};
using DsPtr = std::unique_ptr<void, DsCloser>;

DsPtr open_raster(const std::string &path) {
  return DsPtr(GDALOpenEx(path.c_str(), GDAL_OF_RASTER | GDAL_OF_READONLY, nullptr, nullptr, nullptr));
}

template <typename T>
std::vector<T> read_band(GDALDatasetH ds, int band, GDALDataType type) {
  std::vector<T> v(static_cast<size_t>(kW) * kH);
  GDALRasterBandH b = GDALGetRasterBand(ds, band);
  EXPECT_EQ(CE_None, GDALRasterIO(b, GF_Read, 0, 0, kW, kH, v.data(), kW, kH, type, 0, 0));
  return v;
}

struct Rgb {
  std::vector<unsigned char> r, g, b;
  unsigned char max_at(size_t i) const { return std::max(r[i], std::max(g[i], b[i])); }
};

Rgb read_rgb(const std::string &path) {
  Rgb out;
  DsPtr ds = open_raster(path);
  EXPECT_TRUE(ds) << "cannot open " << path;
  if (!ds) return out;
  EXPECT_EQ(kW, GDALGetRasterXSize(ds.get()));
  EXPECT_EQ(kH, GDALGetRasterYSize(ds.get()));
  EXPECT_EQ(3, GDALGetRasterCount(ds.get()));
  out.r = read_band<unsigned char>(ds.get(), 1, GDT_Byte);
  out.g = read_band<unsigned char>(ds.get(), 2, GDT_Byte);
  out.b = read_band<unsigned char>(ds.get(), 3, GDT_Byte);
  return out;
}

std::vector<std::pair<double, double>> ring_of(json_object *polygon_coords) {
  std::vector<std::pair<double, double>> ring;
  json_object *r0 = json_object_array_get_idx(polygon_coords, 0);
  for (size_t i = 0; r0 && i < json_object_array_length(r0); i++) {
    json_object *p = json_object_array_get_idx(r0, i);
    ring.emplace_back(json_object_get_double(json_object_array_get_idx(p, 0)),
                      json_object_get_double(json_object_array_get_idx(p, 1)));
  }
  return ring;
}

std::vector<GtObject> load_ground_truth() {
  std::vector<GtObject> out;
  json_object *root = json_object_from_file(data_file("ground_truth.geojson").c_str());
  EXPECT_NE(nullptr, root) << "ground_truth.geojson is not valid JSON";
  if (!root) return out;
  json_object *features = nullptr;
  EXPECT_TRUE(json_object_object_get_ex(root, "features", &features));
  for (size_t i = 0; features && i < json_object_array_length(features); i++) {
    json_object *f = json_object_array_get_idx(features, i), *props = nullptr, *geom = nullptr, *v = nullptr;
    EXPECT_TRUE(json_object_object_get_ex(f, "properties", &props));
    EXPECT_TRUE(json_object_object_get_ex(f, "geometry", &geom));
    GtObject o;
    if (json_object_object_get_ex(props, "id", &v)) o.id = json_object_get_int(v);
    if (json_object_object_get_ex(props, "class", &v)) o.cls = json_object_get_string(v);
    if (json_object_object_get_ex(props, "shape", &v)) o.shape = json_object_get_string(v);
    if (json_object_object_get_ex(props, "pixel_count", &v)) o.count = json_object_get_int64(v);
    if (json_object_object_get_ex(props, "in_nodata_block", &v)) o.in_nodata = json_object_get_boolean(v);
    if (json_object_object_get_ex(props, "pixel_bbox", &v))
      for (int k = 0; k < 4; k++) o.bbox[k] = json_object_get_int(json_object_array_get_idx(v, k));
    if (json_object_object_get_ex(props, "pixel_footprint", &v)) o.footprint = ring_of(v);
    json_object *type = nullptr, *coords = nullptr;
    EXPECT_TRUE(json_object_object_get_ex(geom, "type", &type));
    EXPECT_STREQ("Polygon", json_object_get_string(type));
    if (json_object_object_get_ex(geom, "coordinates", &coords)) o.lonlat = ring_of(coords);
    out.push_back(o);
  }
  json_object_put(root);
  return out;
}

bool in_bbox(const int b[4], int x, int y) { return x >= b[0] && x < b[2] && y >= b[1] && y < b[3]; }

// Checks that `bright(i)` pixels are exactly the ground truth's objects:
// per object the count and the tight bbox match, and nothing else is bright.
template <typename Bright>
void expect_objects_match(const std::vector<GtObject> &gt, Bright bright, bool skip_nodata,
                          const std::string &what) {
  std::vector<int> owner(static_cast<size_t>(kW) * kH, 0);
  for (const GtObject &o : gt)
    for (int y = o.bbox[1]; y < o.bbox[3]; y++)
      for (int x = o.bbox[0]; x < o.bbox[2]; x++) owner[static_cast<size_t>(y) * kW + x] = o.id;
  long stray = 0;
  for (int y = 0; y < kH; y++)
    for (int x = 0; x < kW; x++) {
      size_t i = static_cast<size_t>(y) * kW + x;
      if (bright(i) && owner[i] == 0) stray++;
    }
  EXPECT_EQ(0, stray) << what << ": bright pixels outside every ground-truth bbox";
  for (const GtObject &o : gt) {
    if (skip_nodata && o.in_nodata) continue;
    long n = 0;
    int bb[4] = {kW, kH, 0, 0};
    for (int y = o.bbox[1]; y < o.bbox[3]; y++)
      for (int x = o.bbox[0]; x < o.bbox[2]; x++)
        if (bright(static_cast<size_t>(y) * kW + x)) {
          n++;
          bb[0] = std::min(bb[0], x); bb[1] = std::min(bb[1], y);
          bb[2] = std::max(bb[2], x + 1); bb[3] = std::max(bb[3], y + 1);
        }
    EXPECT_EQ(o.count, n) << what << ": object " << o.id;
    for (int k = 0; k < 4; k++) EXPECT_EQ(o.bbox[k], bb[k]) << what << ": object " << o.id << " bbox[" << k << "]";
  }
}

}  // namespace

TEST(Data, GroundTruthIsWellFormed) {
  std::vector<GtObject> gt = load_ground_truth();
  ASSERT_GE(gt.size(), 50u);
  int buildings = 0, vehicles = 0;
  for (size_t i = 0; i < gt.size(); i++) {
    const GtObject &o = gt[i];
    EXPECT_EQ(static_cast<int>(i) + 1, o.id);
    EXPECT_TRUE(o.cls == "building" || o.cls == "vehicle") << o.cls;
    (o.cls == "building" ? buildings : vehicles)++;
    EXPECT_GE(o.bbox[0], 0); EXPECT_GE(o.bbox[1], 0);
    EXPECT_LE(o.bbox[2], kW); EXPECT_LE(o.bbox[3], kH);
    EXPECT_LT(o.bbox[0], o.bbox[2]); EXPECT_LT(o.bbox[1], o.bbox[3]);
    EXPECT_GE(o.count, 12) << "the blobs model drops components under 12 pixels";
    ASSERT_GE(o.footprint.size(), 5u);
    EXPECT_EQ(o.footprint.front(), o.footprint.back()) << "footprint ring must be closed";
    EXPECT_EQ(o.footprint.size(), o.lonlat.size());
    // The footprint polygon encloses the painted pixels to within a pixel;
    // for axis-aligned rectangles it is exactly the pixel bbox.
    double mnx = 1e9, mny = 1e9, mxx = -1e9, mxy = -1e9;
    for (auto &p : o.footprint) {
      mnx = std::min(mnx, p.first); mxx = std::max(mxx, p.first);
      mny = std::min(mny, p.second); mxy = std::max(mxy, p.second);
    }
    double tol = o.shape == "rectangle" ? 0.0 : 1.0;
    EXPECT_NEAR(o.bbox[0], mnx, tol) << o.id;
    EXPECT_NEAR(o.bbox[1], mny, tol) << o.id;
    EXPECT_NEAR(o.bbox[2], mxx, tol) << o.id;
    EXPECT_NEAR(o.bbox[3], mxy, tol) << o.id;
    // Pairwise separation: at least 8 pixels between any two bboxes.
    for (size_t j = 0; j < i; j++) {
      const GtObject &p = gt[j];
      bool apart = o.bbox[2] + 8 <= p.bbox[0] || p.bbox[2] + 8 <= o.bbox[0] || o.bbox[3] + 8 <= p.bbox[1] ||
                   p.bbox[3] + 8 <= o.bbox[1];
      EXPECT_TRUE(apart) << "objects " << p.id << " and " << o.id << " are closer than 8 px";
    }
  }
  EXPECT_GE(buildings, 10);
  EXPECT_GE(vehicles, 10);
}

TEST(Data, GroundTruthGeometryIsTheFootprintInWgs84) {
  std::vector<GtObject> gt = load_ground_truth();
  ASSERT_FALSE(gt.empty());
  DsPtr ds = open_raster(data_file("scene_utm.tif"));
  ASSERT_TRUE(ds);
  double gt6[6];
  ASSERT_EQ(CE_None, GDALGetGeoTransform(ds.get(), gt6));
  EXPECT_DOUBLE_EQ(0.5, gt6[1]);
  EXPECT_DOUBLE_EQ(-0.5, gt6[5]);
  EXPECT_EQ(0.0, gt6[2]);
  EXPECT_EQ(0.0, gt6[4]);
  OGRSpatialReferenceH src = OSRNewSpatialReference(GDALGetProjectionRef(ds.get()));
  ASSERT_NE(nullptr, src);
  EXPECT_STREQ("32633", OSRGetAuthorityCode(src, nullptr));
  OGRSpatialReferenceH dst = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(dst, 4326);
  OSRSetAxisMappingStrategy(src, OAMS_TRADITIONAL_GIS_ORDER);
  OSRSetAxisMappingStrategy(dst, OAMS_TRADITIONAL_GIS_ORDER);
  OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(src, dst);
  ASSERT_NE(nullptr, ct);
  for (const GtObject &o : gt) {
    for (size_t k = 0; k < o.footprint.size(); k++) {
      double x = gt6[0] + o.footprint[k].first * gt6[1], y = gt6[3] + o.footprint[k].second * gt6[5];
      ASSERT_TRUE(OCTTransform(ct, 1, &x, &y, nullptr));
      EXPECT_NEAR(x, o.lonlat[k].first, 1e-8) << "object " << o.id;
      EXPECT_NEAR(y, o.lonlat[k].second, 1e-8) << "object " << o.id;
    }
  }
  OCTDestroyCoordinateTransformation(ct);
  OSRDestroySpatialReference(src);
  OSRDestroySpatialReference(dst);
}

TEST(Data, GroundTruthMatchesPixels) {
  std::vector<GtObject> gt = load_ground_truth();
  ASSERT_FALSE(gt.empty());
  Rgb px = read_rgb(data_file("scene_utm.tif"));
  ASSERT_EQ(static_cast<size_t>(kW) * kH, px.r.size());

  expect_objects_match(gt, [&](size_t i) { return px.max_at(i) > kBright; }, false, "scene_utm.tif");

  // Every object pixel has its class's colour; everything else is
  // background, at most 140 in every band.
  std::vector<int> cls(static_cast<size_t>(kW) * kH, -1);
  for (const GtObject &o : gt)
    for (int y = o.bbox[1]; y < o.bbox[3]; y++)
      for (int x = o.bbox[0]; x < o.bbox[2]; x++) cls[static_cast<size_t>(y) * kW + x] = o.cls == "vehicle";
  long bad_bg = 0, bad_building = 0, bad_vehicle = 0;
  for (size_t i = 0; i < cls.size(); i++) {
    bool bright = px.max_at(i) > kBright;
    if (!bright) {
      if (px.max_at(i) > kBackground) bad_bg++;
      continue;
    }
    int r = px.r[i], g = px.g[i], b = px.b[i];
    if (cls[i] == 0 && !(r >= 200 && g >= 200 && b >= 200 && std::abs(r - b) <= 20 && std::abs(r - g) <= 20))
      bad_building++;
    if (cls[i] == 1 && !(r >= 200 && b <= 90)) bad_vehicle++;
  }
  EXPECT_EQ(0, bad_bg) << "background pixels above " << kBackground;
  EXPECT_EQ(0, bad_building) << "building pixels that are not bright grey/white";
  EXPECT_EQ(0, bad_vehicle) << "vehicle pixels that are not bright red/orange";
}

TEST(Data, SceneCoversSeamsAndEdges) {
  // The scene exists to exercise tiling: check that the placements the
  // README promises are really there.
  std::vector<GtObject> gt = load_ground_truth();
  bool left = false, right = false, top = false, bottom = false, wide_seam = false, seam1024 = false;
  for (const GtObject &o : gt) {
    left |= o.bbox[0] == 0;
    right |= o.bbox[2] == kW;
    top |= o.bbox[1] == 0;
    bottom |= o.bbox[3] == kH;
    // Spans the whole 64-pixel overlap band 448..512 of a 512/64 grid.
    wide_seam |= o.bbox[0] < 448 && o.bbox[2] > 512;
    // Crosses a seam of the 1024/128 grid (tiles at 0, 896, 1792, ...).
    seam1024 |= (o.bbox[0] < 1024 && o.bbox[2] > 1024) || (o.bbox[0] < 1792 && o.bbox[2] > 1792);
  }
  EXPECT_TRUE(left && right && top && bottom) << "objects touching every image edge";
  EXPECT_TRUE(wide_seam) << "an object wider than the overlap across a 512/64 seam";
  EXPECT_TRUE(seam1024) << "an object across a 1024/128 seam";
}

TEST(Data, NitfIsGeoreferencedByRpcOnly) {
  DsPtr ds = open_raster(data_file("scene_rpc.ntf"));
  ASSERT_TRUE(ds);
  EXPECT_STREQ("NITF", GDALGetDriverShortName(GDALGetDatasetDriver(ds.get())));
  double gt6[6];
  EXPECT_NE(CE_None, GDALGetGeoTransform(ds.get(), gt6)) << "the NITF must carry no geotransform";
  EXPECT_STREQ("", GDALGetProjectionRef(ds.get()));
  EXPECT_EQ(0, GDALGetGCPCount(ds.get()));
  const char *icords = GDALGetMetadataItem(ds.get(), "NITF_ICORDS", nullptr);
  EXPECT_TRUE(icords == nullptr || std::string(icords).find_first_not_of(' ') == std::string::npos)
      << "ICORDS must be blank (no IGEOLO)";
  char **rpc = GDALGetMetadata(ds.get(), "RPC");
  ASSERT_NE(nullptr, rpc);
  GDALRPCInfoV2 info;
  EXPECT_TRUE(GDALExtractRPCInfoV2(rpc, &info));
  // Lossless JPEG 2000: the pixels are exactly the GeoTIFF's.
  Rgb a = read_rgb(data_file("scene_rpc.ntf")), b = read_rgb(data_file("scene_utm.tif"));
  EXPECT_TRUE(a.r == b.r && a.g == b.g && a.b == b.b) << "NITF pixels differ from scene_utm.tif";
}

TEST(Data, NitfRpcAgreesWithGeotransform) {
  DsPtr ntf = open_raster(data_file("scene_rpc.ntf"));
  DsPtr tif = open_raster(data_file("scene_utm.tif"));
  ASSERT_TRUE(ntf && tif);
  GDALRPCInfoV2 info;
  ASSERT_TRUE(GDALExtractRPCInfoV2(GDALGetMetadata(ntf.get(), "RPC"), &info));
  void *rpc = GDALCreateRPCTransformerV2(&info, FALSE, 0.0, nullptr);
  ASSERT_NE(nullptr, rpc);
  double gt6[6];
  ASSERT_EQ(CE_None, GDALGetGeoTransform(tif.get(), gt6));
  OGRSpatialReferenceH src = OSRNewSpatialReference(GDALGetProjectionRef(tif.get()));
  OGRSpatialReferenceH dst = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(dst, 4326);
  OSRSetAxisMappingStrategy(src, OAMS_TRADITIONAL_GIS_ORDER);
  OSRSetAxisMappingStrategy(dst, OAMS_TRADITIONAL_GIS_ORDER);
  OGRCoordinateTransformationH to_ll = OCTNewCoordinateTransformation(src, dst);
  OGRCoordinateTransformationH to_utm = OCTNewCoordinateTransformation(dst, src);
  ASSERT_TRUE(to_ll && to_utm);
  double worst_inv = 0, worst_fwd = 0;
  for (int j = 0; j <= 20; j++)
    for (int i = 0; i <= 20; i++) {
      double px = kW * i / 20.0, py = kH * j / 20.0;
      double lon = gt6[0] + px * gt6[1], lat = gt6[3] + py * gt6[5];
      ASSERT_TRUE(OCTTransform(to_ll, 1, &lon, &lat, nullptr));
      // Ground -> image through the RPCs (the direction RPCs define).
      double x = lon, y = lat, z = 0;
      int ok = 0;
      ASSERT_TRUE(GDALRPCTransform(rpc, TRUE, 1, &x, &y, &z, &ok));
      ASSERT_TRUE(ok);
      worst_inv = std::max(worst_inv, std::hypot(x - px, y - py));
      // Image -> ground (GDAL iterates the inverse), back through the
      // geotransform to pixels.
      x = px; y = py; z = 0;
      ASSERT_TRUE(GDALRPCTransform(rpc, FALSE, 1, &x, &y, &z, &ok));
      ASSERT_TRUE(ok);
      ASSERT_TRUE(OCTTransform(to_utm, 1, &x, &y, nullptr));
      worst_fwd = std::max(worst_fwd, std::hypot((x - gt6[0]) / gt6[1] - px, (y - gt6[3]) / gt6[5] - py));
    }
  EXPECT_LT(worst_inv, 0.01) << "RPC ground->image disagrees with the geotransform (pixels)";
  EXPECT_LT(worst_fwd, 0.5) << "RPC image->ground disagrees with the geotransform (pixels)";
  GDALDestroyRPCTransformer(rpc);
  OCTDestroyCoordinateTransformation(to_ll);
  OCTDestroyCoordinateTransformation(to_utm);
  OSRDestroySpatialReference(src);
  OSRDestroySpatialReference(dst);
}

TEST(Data, GdaltransformRpcAgreesWithGeotransform) {
  // The same check through the gdaltransform utility, as a user would run it:
  // pixel -> lon/lat through the GeoTIFF, then lon/lat -> pixel through the
  // NITF's RPCs.
  std::string tif = data_file("scene_utm.tif"), ntf = data_file("scene_rpc.ntf");
  std::string cmd = "printf '0 0\\n1500 1000\\n2999.5 1999.5\\n448 512\\n' | gdaltransform -t_srs EPSG:4326 '" + tif +
                    "' | gdaltransform -rpc -i '" + ntf + "' 2>&1";
  FILE *p = popen(cmd.c_str(), "r");
  ASSERT_NE(nullptr, p);
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  ASSERT_EQ(0, pclose(p)) << "gdaltransform failed (is gdal-bin installed?): " << out;
  const double expect[4][2] = {{0, 0}, {1500, 1000}, {2999.5, 1999.5}, {448, 512}};
  std::istringstream in(out);
  for (int k = 0; k < 4; k++) {
    double x = -1, y = -1, z = -1;
    ASSERT_TRUE(static_cast<bool>(in >> x >> y >> z)) << out;
    EXPECT_NEAR(expect[k][0], x, 0.05) << out;
    EXPECT_NEAR(expect[k][1], y, 0.05) << out;
  }
}

TEST(Data, U16VariantIsElevenBitWithSameObjects) {
  DsPtr ds = open_raster(data_file("scene_u16.tif"));
  ASSERT_TRUE(ds);
  ASSERT_EQ(4, GDALGetRasterCount(ds.get()));
  for (int b = 1; b <= 4; b++) EXPECT_EQ(GDT_UInt16, GDALGetRasterDataType(GDALGetRasterBand(ds.get(), b)));
  Rgb ref = read_rgb(data_file("scene_utm.tif"));
  std::vector<uint16_t> band[4];
  uint16_t vmax = 0;
  for (int b = 0; b < 4; b++) {
    band[b] = read_band<uint16_t>(ds.get(), b + 1, GDT_UInt16);
    vmax = std::max(vmax, *std::max_element(band[b].begin(), band[b].end()));
  }
  EXPECT_LE(vmax, 2047) << "values must fit 11 bits";
  EXPECT_GT(vmax, 1023) << "the 11th bit must be used";
  // Bands 1-3 are the 8-bit scene stretched to 11 bits: v = round(b * 2047 / 255).
  const std::vector<unsigned char> *src[3] = {&ref.r, &ref.g, &ref.b};
  long mismatches = 0;
  for (int b = 0; b < 3; b++)
    for (size_t i = 0; i < band[b].size(); i++)
      if (band[b][i] != ((*src[b])[i] * 2047 + 127) / 255) mismatches++;
  EXPECT_EQ(0, mismatches);
  // Objects are where the ground truth says, with the threshold scaled.
  std::vector<GtObject> gt = load_ground_truth();
  const int thr = kBright * 2047 / 255;
  expect_objects_match(
      gt, [&](size_t i) { return std::max(band[0][i], std::max(band[1][i], band[2][i])) > thr; }, false,
      "scene_u16.tif");
}

TEST(Data, NodataTilesAreNodataAndMasked) {
  DsPtr ds = open_raster(data_file("scene_nodata.tif"));
  ASSERT_TRUE(ds);
  for (int b = 1; b <= 3; b++) {
    GDALRasterBandH band = GDALGetRasterBand(ds.get(), b);
    int has = 0;
    EXPECT_EQ(0.0, GDALGetRasterNoDataValue(band, &has));
    EXPECT_TRUE(has) << "band " << b << " has no nodata value";
    EXPECT_EQ(GMF_PER_DATASET, GDALGetMaskFlags(band)) << "band " << b << " has no dataset mask";
  }
  Rgb px = read_rgb(data_file("scene_nodata.tif")), ref = read_rgb(data_file("scene_utm.tif"));
  std::vector<unsigned char> mask(static_cast<size_t>(kW) * kH);
  ASSERT_EQ(CE_None, GDALRasterIO(GDALGetMaskBand(GDALGetRasterBand(ds.get(), 1)), GF_Read, 0, 0, kW, kH,
                                  mask.data(), kW, kH, GDT_Byte, 0, 0));
  long bad_inside = 0, bad_outside = 0;
  for (int y = 0; y < kH; y++)
    for (int x = 0; x < kW; x++) {
      size_t i = static_cast<size_t>(y) * kW + x;
      if (in_bbox(kNodataBlock, x, y)) {
        if (px.r[i] || px.g[i] || px.b[i] || mask[i]) bad_inside++;
      } else if (mask[i] != 255 || px.r[i] != ref.r[i] || px.g[i] != ref.g[i] || px.b[i] != ref.b[i] ||
                 px.r[i] == 0 || px.g[i] == 0 || px.b[i] == 0) {
        bad_outside++;
      }
    }
  EXPECT_EQ(0, bad_inside) << "pixels of the nodata block that are not nodata + masked";
  EXPECT_EQ(0, bad_outside) << "valid pixels that differ from scene_utm.tif or are masked";
  // Whole tiles of a 512-pixel grid, with and without a 64-pixel overlap.
  int whole_512 = 0, whole_512_64 = 0;
  for (int ty = 0; ty + 512 <= kH; ty += 512)
    for (int tx = 0; tx + 512 <= kW; tx += 512)
      whole_512 += tx >= kNodataBlock[0] && tx + 512 <= kNodataBlock[2] && ty >= kNodataBlock[1] &&
                   ty + 512 <= kNodataBlock[3];
  for (int ty = 0; ty + 512 <= kH; ty += 448)
    for (int tx = 0; tx + 512 <= kW; tx += 448)
      whole_512_64 += tx >= kNodataBlock[0] && tx + 512 <= kNodataBlock[2] && ty >= kNodataBlock[1] &&
                      ty + 512 <= kNodataBlock[3];
  EXPECT_GE(whole_512, 4);
  EXPECT_GE(whole_512_64, 2);
  // Objects are only in valid areas: ground-truth objects flagged
  // in_nodata_block are gone, the others are intact.
  std::vector<GtObject> gt = load_ground_truth();
  int flagged = 0;
  for (const GtObject &o : gt) {
    bool inside = o.bbox[0] >= kNodataBlock[0] && o.bbox[2] <= kNodataBlock[2] && o.bbox[1] >= kNodataBlock[1] &&
                  o.bbox[3] <= kNodataBlock[3];
    bool outside = o.bbox[2] <= kNodataBlock[0] || o.bbox[0] >= kNodataBlock[2] || o.bbox[3] <= kNodataBlock[1] ||
                   o.bbox[1] >= kNodataBlock[3];
    EXPECT_TRUE(inside || outside) << "object " << o.id << " straddles the nodata block";
    EXPECT_EQ(inside, o.in_nodata) << "object " << o.id;
    flagged += o.in_nodata;
  }
  EXPECT_GE(flagged, 1);
  expect_objects_match(gt, [&](size_t i) { return px.max_at(i) > kBright; }, true, "scene_nodata.tif");
}

TEST(Data, RegenerationIsByteIdentical) {
#ifndef ASD_MAKE_SAMPLES_BIN
  FAIL() << "asd_make_samples was not built";
#else
  char tmpl[] = "/tmp/asd_data_XXXXXX";
  ASSERT_NE(nullptr, mkdtemp(tmpl));
  std::string dir = tmpl;
  std::string cmd = std::string("'") + ASD_MAKE_SAMPLES_BIN + "' '" + dir + "' >/dev/null";
  int rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << cmd;
  const char *files[] = {"scene_utm.tif", "scene_rpc.ntf", "scene_u16.tif", "scene_nodata.tif",
                         "ground_truth.geojson"};
  for (const char *f : files) {
    std::ifstream a(data_file(f), std::ios::binary), b(dir + "/" + f, std::ios::binary);
    std::string sa((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
    std::string sb((std::istreambuf_iterator<char>(b)), std::istreambuf_iterator<char>());
    EXPECT_FALSE(sa.empty()) << f;
    EXPECT_TRUE(sa == sb) << f << " differs when regenerated: the generator is not deterministic "
                          << "or data/ is stale (run build/asd_make_samples data/)";
    std::remove((dir + "/" + f).c_str());
  }
  // Nothing else (no .aux.xml side-car) may be written.
  std::string left = dir + "/scene_utm.tif.aux.xml";
  struct stat st;
  EXPECT_NE(0, stat(left.c_str(), &st)) << "the generator wrote side-car files";
  int cleanup = std::system(("rm -rf '" + dir + "'").c_str());
  (void)cleanup;
#endif
}
