// Georeferenced payloads (GTiff, NITF) carry exactly the source's
// georeferencing and pixels, whichever way the encoder makes them.
//
// The encoder writes GTiff payloads with Create + RasterIO and a spatial
// reference parsed once per encoder, not with CreateCopy from a MEM dataset
// given the WKT at every tile (tiler/encode.c, write_gtiff).  These tests
// decode payloads of every georeferenced format and compare them with the
// source: the geotransform shifted to the tile (exactly), the same SRS
// (OSRIsSame, for an EPSG-coded SRS and for one without any code), the
// colour interpretation, the pixels, and, for GTiff, the bytes CreateCopy
// of the same tile gives (the file GDAL itself would write for the tile).
#include <gtest/gtest.h>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "asyncdetect/asd_encode.h"
#include "asyncdetect/asd_plan.h"

namespace {

unsigned char value(int b, int x, int y) { return (unsigned char)((x * 5 + y * 11 + b * 70 + (x ^ y) % 13) % 256); }

// A tiled Byte GeoTIFF with nb bands, the SRS given as user input
// (EPSG:NNNN or a PROJ string) and a north-up geotransform.
std::string make_source(const std::string &name, int nb, const char *srs_def) {
  GDALAllRegister();
  const int w = 320, h = 240;
  char **co = CSLSetNameValue(nullptr, "TILED", "YES");
  co = CSLSetNameValue(co, "BLOCKXSIZE", "64");
  co = CSLSetNameValue(co, "BLOCKYSIZE", "64");
  // Four plain bands, not RGB + alpha (an alpha band would mask pixels).
  if (nb == 4) co = CSLSetNameValue(co, "ALPHA", "NO");
  if (nb == 4) co = CSLSetNameValue(co, "PHOTOMETRIC", "MINISBLACK");
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), name.c_str(), w, h, nb, GDT_Byte, co);
  CSLDestroy(co);
  double gt[6] = {431234.25, 0.3, 0, 5012345.75, 0, -0.3};
  GDALSetGeoTransform(ds, gt);
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  EXPECT_EQ(OGRERR_NONE, OSRSetFromUserInput(srs, srs_def));
  GDALSetSpatialRef(ds, srs);
  OSRDestroySpatialReference(srs);
  std::vector<unsigned char> buf((size_t)w * h);
  for (int b = 1; b <= nb; b++) {
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) buf[(size_t)y * w + x] = value(b, x, y);
    EXPECT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(ds, b), GF_Write, 0, 0, w, h, buf.data(), w, h, GDT_Byte,
                                    0, 0));
  }
  GDALClose(ds);
  return name;
}

asd_tile tile_at(int x, int y, int w, int h) {
  asd_tile t;
  memset(&t, 0, sizeof(t));
  t.x = x;
  t.y = y;
  t.w = w;
  t.h = h;
  return t;
}

// The payload as GDAL's CreateCopy writes the tile: the MEM dataset the
// encoder used to copy from (R, G, B bands, shifted geotransform, the
// source's SRS), CreateCopy'd with the same creation options.
std::vector<unsigned char> createcopy_reference(GDALDatasetH src, const asd_tile &t, const char *driver,
                                                char **copts) {
  const int nb = GDALGetRasterCount(src);
  GDALDatasetH mem = GDALCreate(GDALGetDriverByName("MEM"), "", t.w, t.h, nb, GDT_Byte, nullptr);
  std::vector<unsigned char> px((size_t)t.w * t.h * nb);
  EXPECT_EQ(CE_None, GDALDatasetRasterIO(src, GF_Read, t.x, t.y, t.w, t.h, px.data(), t.w, t.h, GDT_Byte, nb,
                                         nullptr, 0, 0, 0));
  EXPECT_EQ(CE_None, GDALDatasetRasterIO(mem, GF_Write, 0, 0, t.w, t.h, px.data(), t.w, t.h, GDT_Byte, nb,
                                         nullptr, 0, 0, 0));
  if (nb >= 3)
    for (int b = 0; b < 3; b++)
      GDALSetRasterColorInterpretation(GDALGetRasterBand(mem, b + 1), (GDALColorInterp)(GCI_RedBand + b));
  double gt[6];
  GDALGetGeoTransform(src, gt);
  gt[0] += t.x * gt[1] + t.y * gt[2];
  gt[3] += t.x * gt[4] + t.y * gt[5];
  GDALSetGeoTransform(mem, gt);
  GDALSetProjection(mem, GDALGetProjectionRef(src));
  CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO");
  const char *name = "/vsimem/georef_reference.tif";
  GDALDatasetH out = GDALCreateCopy(GDALGetDriverByName(driver), name, mem, FALSE, copts, nullptr, nullptr);
  CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", nullptr);
  EXPECT_NE(nullptr, out);
  if (out) GDALClose(out);
  GDALClose(mem);
  vsi_l_offset len = 0;
  GByte *buf = VSIGetMemFileBuffer(name, &len, TRUE);
  std::vector<unsigned char> bytes(buf, buf + len);
  VSIFree(buf);
  return bytes;
}

// Decodes the payload and checks it against the source window t.
// NITF stores UTM corners in whole metres and no EPSG code (IGEOLO):
// gt_tol 1 m and same_code false there.
void expect_payload_matches(GDALDatasetH src, const asd_tile &t, const asd_payload &p, double gt_tol,
                            bool same_code, const char *what) {
  SCOPED_TRACE(what);
  const char *name = "/vsimem/georef_payload";
  VSIFCloseL(VSIFileFromMemBuffer(name, p.data, p.len, FALSE));
  GDALDatasetH ds = GDALOpen(name, GA_ReadOnly);
  ASSERT_NE(nullptr, ds);
  const int nb = GDALGetRasterCount(src);
  ASSERT_EQ(t.w, GDALGetRasterXSize(ds));
  ASSERT_EQ(t.h, GDALGetRasterYSize(ds));
  ASSERT_EQ(nb, GDALGetRasterCount(ds));
  // Geotransform: the source's, shifted to the tile's origin.
  double sgt[6], pgt[6];
  ASSERT_EQ(CE_None, GDALGetGeoTransform(src, sgt));
  ASSERT_EQ(CE_None, GDALGetGeoTransform(ds, pgt));
  EXPECT_NEAR(sgt[0] + t.x * sgt[1], pgt[0], gt_tol);
  EXPECT_NEAR(sgt[3] + t.y * sgt[5], pgt[3], gt_tol);
  EXPECT_NEAR(sgt[1], pgt[1], gt_tol / 100);
  EXPECT_NEAR(sgt[5], pgt[5], gt_tol / 100);
  // The same SRS as the source reads back.
  OGRSpatialReferenceH ssrs = GDALGetSpatialRef(src), psrs = GDALGetSpatialRef(ds);
  ASSERT_NE(nullptr, psrs);
  EXPECT_TRUE(OSRIsSame(ssrs, psrs)) << GDALGetProjectionRef(ds);
  if (same_code) {
    EXPECT_STREQ(OSRGetAuthorityCode(ssrs, nullptr) ? OSRGetAuthorityCode(ssrs, nullptr) : "(none)",
                 OSRGetAuthorityCode(psrs, nullptr) ? OSRGetAuthorityCode(psrs, nullptr) : "(none)");
  }
  for (int b = 0; nb >= 3 && b < 3; b++) {
    EXPECT_EQ(GCI_RedBand + b, GDALGetRasterColorInterpretation(GDALGetRasterBand(ds, b + 1))) << "band " << b + 1;
  }
  std::vector<unsigned char> px((size_t)t.w * t.h * nb);
  ASSERT_EQ(CE_None, GDALDatasetRasterIO(ds, GF_Read, 0, 0, t.w, t.h, px.data(), t.w, t.h, GDT_Byte, nb, nullptr,
                                         0, 0, 0));
  size_t bad = 0;
  for (int b = 0; b < nb; b++)
    for (int y = 0; y < t.h; y++)
      for (int x = 0; x < t.w; x++)
        if (px[((size_t)b * t.h + y) * t.w + x] != value(b + 1, t.x + x, t.y + y)) bad++;
  EXPECT_EQ(0u, bad);
  GDALClose(ds);
  VSIUnlink(name);
}

struct SourceCase {
  const char *label;
  int bands;
  const char *srs;
};

const SourceCase kSources[] = {
    {"EPSG:32631, RGB", 3, "EPSG:32631"},
    {"PROJ string without any EPSG code, RGB", 3,
     "+proj=tmerc +lat_0=10 +lon_0=7.5 +k=0.9995 +x_0=300000 +y_0=-20000 +ellps=intl +units=m +no_defs"},
    {"EPSG:32631, one band", 1, "EPSG:32631"},
    {"EPSG:32631, four bands", 4, "EPSG:32631"},
};

}  // namespace

TEST(EncodeGeoref, GtiffPayloadsCarryTheSourceGeoreferencingAndPixels) {
  for (const SourceCase &sc : kSources) {
    for (const char *compress : {"NONE", "DEFLATE"}) {
      const std::string label = std::string(sc.label) + ", COMPRESS=" + compress;
      SCOPED_TRACE(label);
      const std::string path = make_source("/vsimem/georef_src.tif", sc.bands, sc.srs);
      asd_encode_options o;
      asd_encode_options_init(&o);
      o.format = ASD_FORMAT_GTIFF;
      o.compress = compress;
      for (int b = 0; b < sc.bands; b++) o.bands[b] = b + 1;
      o.band_count = sc.bands;
      asd_encoder *e = asd_encoder_new(path.c_str(), &o);
      ASSERT_NE(nullptr, e);
      GDALDatasetH src = GDALOpen(path.c_str(), GA_ReadOnly);
      ASSERT_NE(nullptr, src);
      // Two tiles: the encoder's per-encoder state (the SRS parsed once)
      // serves every tile, not only the first.
      for (const asd_tile &t : {tile_at(37, 21, 128, 96), tile_at(190, 140, 130, 100)}) {
        asd_payload p;
        ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, &t, &p));
        expect_payload_matches(src, t, p, 1e-9, true, label.c_str());
        // The very file CreateCopy of the tile writes.
        char **copts = CSLSetNameValue(nullptr, "COMPRESS", compress);
        std::vector<unsigned char> ref = createcopy_reference(src, t, "GTiff", copts);
        CSLDestroy(copts);
        EXPECT_TRUE(ref.size() == p.len && memcmp(ref.data(), p.data, p.len) == 0)
            << "payload of " << p.len << " bytes differs from CreateCopy's " << ref.size();
        asd_payload_free(&p);
      }
      GDALClose(src);
      asd_encoder_free(e);
      VSIUnlink(path.c_str());
    }
  }
}

TEST(EncodeGeoref, NitfPayloadsCarryTheSourceGeoreferencingAndPixels) {
  // The NITF driver writes WGS 84 geographic and UTM only (IGEOLO, corners
  // in whole metres for UTM): the EPSG:32631 sources.
  for (const SourceCase &sc : kSources) {
    if (strcmp(sc.srs, "EPSG:32631") != 0) continue;
    SCOPED_TRACE(sc.label);
    const std::string path = make_source("/vsimem/georef_src_nitf.tif", sc.bands, sc.srs);
    asd_encode_options o;
    asd_encode_options_init(&o);
    o.format = ASD_FORMAT_NITF;
    for (int b = 0; b < sc.bands; b++) o.bands[b] = b + 1;
    o.band_count = sc.bands;
    asd_encoder *e = asd_encoder_new(path.c_str(), &o);
    ASSERT_NE(nullptr, e);
    GDALDatasetH src = GDALOpen(path.c_str(), GA_ReadOnly);
    for (const asd_tile &t : {tile_at(40, 20, 128, 96), tile_at(190, 140, 130, 100)}) {
      asd_payload p;
      ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, &t, &p));
      expect_payload_matches(src, t, p, 1.0, false, sc.label);
      asd_payload_free(&p);
    }
    GDALClose(src);
    asd_encoder_free(e);
    VSIUnlink(path.c_str());
  }
}

TEST(EncodeGeoref, NonGeoreferencedFormatsKeepThePixels) {
  // PNG, WEBP (lossless) and JPEG payloads of the same source: the pixels
  // (JPEG within its loss), and no /vsimem/ file left behind.
  const std::string path = make_source("/vsimem/georef_src_png.tif", 3, "EPSG:32631");
  GDALDatasetH src = GDALOpen(path.c_str(), GA_ReadOnly);
  const asd_tile t = tile_at(37, 21, 128, 96);
  for (asd_encode_format fmt : {ASD_FORMAT_PNG, ASD_FORMAT_WEBP, ASD_FORMAT_JPEG}) {
    SCOPED_TRACE(asd_encode_format_name(fmt));
    asd_encode_options o;
    asd_encode_options_init(&o);
    o.format = fmt;
    char **co = fmt == ASD_FORMAT_WEBP ? CSLSetNameValue(nullptr, "LOSSLESS", "YES") : nullptr;
    o.creation_options = co;
    asd_encoder *e = asd_encoder_new(path.c_str(), &o);
    ASSERT_NE(nullptr, e);
    asd_payload p;
    ASSERT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, &t, &p));
    const char *name = "/vsimem/georef_plain";
    VSIFCloseL(VSIFileFromMemBuffer(name, p.data, p.len, FALSE));
    GDALDatasetH ds = GDALOpen(name, GA_ReadOnly);
    ASSERT_NE(nullptr, ds);
    std::vector<unsigned char> px((size_t)t.w * t.h * 3);
    ASSERT_EQ(CE_None, GDALDatasetRasterIO(ds, GF_Read, 0, 0, t.w, t.h, px.data(), t.w, t.h, GDT_Byte, 3, nullptr,
                                           0, 0, 0));
    int worst = 0;
    double sum = 0;
    for (int b = 0; b < 3; b++)
      for (int y = 0; y < t.h; y++)
        for (int x = 0; x < t.w; x++) {
          const int d = std::abs((int)px[((size_t)b * t.h + y) * t.w + x] - (int)value(b + 1, t.x + x, t.y + y));
          sum += d;
          if (d > worst) worst = d;
        }
    if (fmt == ASD_FORMAT_JPEG) {
      // Lossy at quality 90 on a busy synthetic pattern: 15 on average;
      // another window or band order gives about 80.
      EXPECT_LT(sum / (3.0 * t.w * t.h), 25.0);
    } else {
      EXPECT_EQ(0, worst);
    }
    GDALClose(ds);
    VSIUnlink(name);
    asd_payload_free(&p);
    asd_encoder_free(e);
    CSLDestroy(co);
  }
  GDALClose(src);
  VSIUnlink(path.c_str());
  char **left = VSIReadDir("/vsimem/");
  for (char **l = left; l && *l; l++) EXPECT_EQ(nullptr, strstr(*l, "asd_encode_")) << *l;
  CSLDestroy(left);
}
