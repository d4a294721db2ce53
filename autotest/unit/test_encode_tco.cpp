// Tile encoding options (issue 15 part 3): WEBP tiles, creation options
// (-tco) that override the defaults and change the bytes sent, and bad
// options refused by asd_encoder_new with the option named.
#include <gtest/gtest.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>

#include <random>
#include <string>
#include <vector>

#include "asyncdetect/asd_encode.h"
#include "asyncdetect/asd_plan.h"

namespace {

// A Byte image of gradients plus seeded noise, like imagery: compressible,
// but not trivially, in /vsimem/.
std::string make_image(const char *name, int bands) {
  GDALAllRegister();
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), name, 256, 256, bands, GDT_Byte, nullptr);
  std::vector<unsigned char> buf(256 * 256);
  std::mt19937 noise(42);
  for (int b = 1; b <= bands; b++) {
    for (int y = 0; y < 256; y++)
      for (int x = 0; x < 256; x++) buf[y * 256 + x] = (unsigned char)((x / 2 + y / 2 + 40 * b + noise() % 24) % 256);
    EXPECT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(ds, b), GF_Write, 0, 0, 256, 256, buf.data(), 256, 256,
                                    GDT_Byte, 0, 0));
  }
  GDALClose(ds);
  return name;
}

asd_tile tile0() {
  asd_tile t;
  memset(&t, 0, sizeof t);
  t.w = t.h = 256;
  return t;
}

// Encodes tile 0 with format f and the given creation options; returns the
// payload size, 0 when the encoder refused the options (error in *why).
size_t encoded_size(const std::string &src, asd_encode_format f, std::vector<const char *> tco,
                    std::string *why = nullptr, std::string *driver = nullptr) {
  asd_encode_options o;
  asd_encode_options_init(&o);
  o.format = f;
  o.skip_constant = o.skip_nodata = 0;
  char **co = nullptr;
  for (const char *c : tco) co = CSLAddString(co, c);
  o.creation_options = co;
  CPLPushErrorHandler(CPLQuietErrorHandler);
  CPLErrorReset();
  asd_encoder *e = asd_encoder_new(src.c_str(), &o);
  if (why) *why = CPLGetLastErrorMsg();
  CPLPopErrorHandler();
  CSLDestroy(co);
  if (!e) return 0;
  asd_tile t = tile0();
  asd_payload p;
  EXPECT_EQ(ASD_ENCODE_OK, asd_encoder_encode(e, &t, &p));
  size_t n = p.len;
  if (driver) {
    VSILFILE *fp = VSIFileFromMemBuffer("/vsimem/tco_check", p.data, p.len, FALSE);
    VSIFCloseL(fp);
    GDALDatasetH ds = GDALOpen("/vsimem/tco_check", GA_ReadOnly);
    *driver = ds ? GDALGetDriverShortName(GDALGetDatasetDriver(ds)) : "";
    if (ds) {
      EXPECT_EQ(256, GDALGetRasterXSize(ds));
      GDALClose(ds);
    }
    VSIUnlink("/vsimem/tco_check");
  }
  asd_payload_free(&p);
  asd_encoder_free(e);
  return n;
}

}  // namespace

TEST(EncodeTco, WebpIsATileFormat) {
  EXPECT_EQ(ASD_FORMAT_WEBP, asd_encode_format_from_name("webp"));
  EXPECT_STREQ("WEBP", asd_encode_format_name(ASD_FORMAT_WEBP));
  EXPECT_STREQ("image/webp", asd_encode_content_type(ASD_FORMAT_WEBP));
  std::string src = make_image("/vsimem/tco_rgb.tif", 3);
  std::string driver;
  size_t lossy = encoded_size(src, ASD_FORMAT_WEBP, {}, nullptr, &driver);
  EXPECT_GT(lossy, 0u);
  EXPECT_EQ("WEBP", driver);
  // Lossless is bigger than the default lossy quality, and smaller than raw.
  size_t lossless = encoded_size(src, ASD_FORMAT_WEBP, {"LOSSLESS=YES"});
  EXPECT_GT(lossless, lossy);
  EXPECT_LT(lossless, 256u * 256 * 3);
  // libwebp's fastest effort is the default (METHOD=0, session 6), and a
  // -tco METHOD overrides it: METHOD=4 makes other (smaller) bytes.
  EXPECT_EQ(lossy, encoded_size(src, ASD_FORMAT_WEBP, {"METHOD=0"}));
  EXPECT_NE(lossy, encoded_size(src, ASD_FORMAT_WEBP, {"METHOD=4"}));
  EXPECT_EQ(lossless, encoded_size(src, ASD_FORMAT_WEBP, {"LOSSLESS=YES", "METHOD=0"}));
  // One band cannot be a WEBP tile: a clear error, not a failure per tile.
  std::string gray = make_image("/vsimem/tco_gray.tif", 1);
  std::string why;
  EXPECT_EQ(0u, encoded_size(gray, ASD_FORMAT_WEBP, {}, &why));
  EXPECT_NE(std::string::npos, why.find("WEBP payloads cannot hold 1 band")) << why;
  VSIUnlink(src.c_str());
  VSIUnlink(gray.c_str());
}

TEST(EncodeTco, CreationOptionsOverrideTheDefaultsAndChangeTheBytes) {
  std::string src = make_image("/vsimem/tco_rgb2.tif", 3);
  // JPEG: QUALITY overrides the default 90 (a duplicate key would be ignored).
  size_t q90 = encoded_size(src, ASD_FORMAT_JPEG, {});
  size_t q30 = encoded_size(src, ASD_FORMAT_JPEG, {"QUALITY=30"});
  EXPECT_LT(q30, q90);
  // PNG: ZLEVEL=1 compresses less than the default 6.
  EXPECT_GT(encoded_size(src, ASD_FORMAT_PNG, {"ZLEVEL=1"}), encoded_size(src, ASD_FORMAT_PNG, {}));
  // WEBP: QUALITY.
  EXPECT_LT(encoded_size(src, ASD_FORMAT_WEBP, {"QUALITY=20"}), encoded_size(src, ASD_FORMAT_WEBP, {}));
  // GTiff: COMPRESS=NONE is raw pixels plus a header, DEFLATE (default) is less.
  size_t none = encoded_size(src, ASD_FORMAT_GTIFF, {"COMPRESS=NONE"});
  EXPECT_GE(none, 256u * 256 * 3);
  EXPECT_LT(encoded_size(src, ASD_FORMAT_GTIFF, {}), none);
  VSIUnlink(src.c_str());
}

TEST(EncodeTco, BadOptionsAreRefusedWithTheOptionNamed) {
  std::string src = make_image("/vsimem/tco_rgb3.tif", 3);
  std::string why;
  EXPECT_EQ(0u, encoded_size(src, ASD_FORMAT_PNG, {"ZLEVL=1"}, &why));
  EXPECT_NE(std::string::npos, why.find("ZLEVL")) << why;
  EXPECT_EQ(0u, encoded_size(src, ASD_FORMAT_JPEG, {"QUALITY=0"}, &why));
  EXPECT_NE(std::string::npos, why.find("JPEG")) << why;
  EXPECT_EQ(0u, encoded_size(src, ASD_FORMAT_GTIFF, {"COMPRESS=NOSUCH"}, &why));
  EXPECT_NE(std::string::npos, why.find("COMPRESS")) << why;
  EXPECT_EQ(0u, encoded_size(src, ASD_FORMAT_PNG, {"NOEQUALSIGN"}, &why));
  EXPECT_NE(std::string::npos, why.find("NAME=VALUE")) << why;
  VSIUnlink(src.c_str());
}
