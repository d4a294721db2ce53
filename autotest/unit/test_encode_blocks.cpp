// Block-aligned reads in the encoder (tiler/blockread.c): tiles cut from
// native blocks are byte-identical to one RasterIO of each window (tiled and
// striped, compressed, overlap, shifted and padded edges, srcwin, band
// selection, UInt16 scaling, nodata / mask / alpha), every native block is
// read once in row-major order (counted by the encoder and, independently,
// by the bytes GDAL pulls from the file through a counting VSI handler), the
// memory cap falls back to window reads, and threads give the same payloads.
#include <gtest/gtest.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "asyncdetect/asd_encode.h"
#include "asyncdetect/asd_plan.h"
// The internal header has no C++ guards: its functions are C.
extern "C" {
#include "tiler_gdal_internal.h"
}

namespace {

// Values with enough texture that DEFLATE blocks differ in size.
double value(int b, int x, int y) { return (double)((x * 7 + y * 13 + b * 50 + (x * y) % 17 + (x ^ y) % 5) % 256); }

struct Src {
  std::string name;
  GDALDataType dt = GDT_Byte;
  int bands = 3;
  std::vector<std::string> co;  // creation options
  int nodata = -1;              // nodata value on every band, -1: none
  bool mask = false;            // internal per-dataset mask
  bool alpha = false;           // last band is alpha
};

// Creates the source described by s, w x h, and returns its name.
std::string make(const Src &s, int w, int h) {
  GDALAllRegister();
  char **co = nullptr;
  for (const auto &c : s.co) co = CSLAddString(co, c.c_str());
  if (s.alpha) co = CSLSetNameValue(co, "ALPHA", "YES");
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), s.name.c_str(), w, h, s.bands, s.dt, co);
  CSLDestroy(co);
  EXPECT_NE(nullptr, ds) << s.name;
  if (!ds) return s.name;
  double gt[6] = {500000, 0.5, 0, 4500000, 0, -0.5};
  GDALSetGeoTransform(ds, gt);
  std::vector<double> buf((size_t)w * h);
  for (int b = 1; b <= s.bands; b++) {
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        double v = value(b, x, y);
        if (s.dt == GDT_UInt16) v = v * 8 + (x % 8);  // 11-bit range
        // Holes of nodata / transparency: a band of rows and a square.
        bool hole = (y >= h / 3 && y < h / 3 + 7) || (x > w / 2 && x < w / 2 + 40 && y > 20 && y < 90);
        if (s.nodata >= 0 && hole && b != 2) v = s.nodata;
        if (s.alpha && b == s.bands) v = hole ? 0 : 255;
        buf[(size_t)y * w + x] = v;
      }
    EXPECT_EQ(CE_None, GDALRasterIO(GDALGetRasterBand(ds, b), GF_Write, 0, 0, w, h, buf.data(), w, h, GDT_Float64,
                                    0, 0));
    if (s.nodata >= 0) GDALSetRasterNoDataValue(GDALGetRasterBand(ds, b), s.nodata);
  }
  if (s.mask) {
    CPLSetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES");
    EXPECT_EQ(CE_None, GDALCreateDatasetMaskBand(ds, GMF_PER_DATASET));
    CPLSetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", nullptr);
    std::vector<unsigned char> m((size_t)w * h);
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) m[(size_t)y * w + x] = ((x / 37 + y / 23) % 4 == 0) ? 0 : 255;
    EXPECT_EQ(CE_None, GDALRasterIO(GDALGetMaskBand(GDALGetRasterBand(ds, 1)), GF_Write, 0, 0, w, h, m.data(), w, h,
                                    GDT_Byte, 0, 0));
  }
  GDALClose(ds);
  return s.name;
}

asd_encoder *encoder(const std::string &path, asd_read_mode mode, const asd_encode_options *base = nullptr,
                     int cache_mb = 0) {
  asd_encode_options o;
  if (base)
    o = *base;
  else
    asd_encode_options_init(&o);
  o.read_mode = mode;
  o.block_cache_mb = cache_mb;
  return asd_encoder_new(path.c_str(), &o);
}

std::string payload(asd_encoder *e, const asd_tile *t, asd_encode_status *st) {
  asd_payload p;
  *st = asd_encoder_encode(e, t, &p);
  std::string s;
  if (*st == ASD_ENCODE_OK) s.assign((const char *)p.data, p.len);
  if (*st == ASD_ENCODE_SKIPPED) s = std::string("skipped:") + asd_skip_reason_name(p.skip);
  asd_payload_free(&p);
  return s;
}

// Native blocks of band 1 that the union of the plan's windows touches.
long long blocks_under(GDALDatasetH ds, asd_plan *plan) {
  int bw = 0, bh = 0;
  GDALGetBlockSize(GDALGetRasterBand(ds, 1), &bw, &bh);
  const int nbx = (GDALGetRasterXSize(ds) + bw - 1) / bw, nby = (GDALGetRasterYSize(ds) + bh - 1) / bh;
  std::vector<char> hit((size_t)nbx * nby, 0);
  for (int i = 0; i < asd_plan_count(plan); i++) {
    const asd_tile *t = asd_plan_tile(plan, i);
    for (int by = t->y / bh; by <= (t->y + t->h - 1) / bh; by++)
      for (int bx = t->x / bw; bx <= (t->x + t->w - 1) / bw; bx++) hit[(size_t)by * nbx + bx] = 1;
  }
  long long n = 0;
  for (char c : hit) n += c;
  return n;
}

struct Case {
  const char *what;
  Src src;
  int w, h;
  int tile, overlap;
  bool pad;
  int srcwin[4];  // xsize 0: whole image
  std::vector<int> bands;
  asd_scale_mode scale;
};

std::vector<Case> cases() {
  std::vector<Case> v;
  auto tiled = [](const char *name, int bs) {
    Src s;
    s.name = std::string("/vsimem/blk_") + name + ".tif";
    s.co = {"TILED=YES", "BLOCKXSIZE=" + std::to_string(bs), "BLOCKYSIZE=" + std::to_string(bs), "COMPRESS=DEFLATE"};
    return s;
  };
  auto striped = [](const char *name, int rows) {
    Src s;
    s.name = std::string("/vsimem/blk_") + name + ".tif";
    s.co = {"TILED=NO", "BLOCKYSIZE=" + std::to_string(rows), "COMPRESS=DEFLATE"};
    return s;
  };
  v.push_back({"tiled 64, overlap, shifted edges", tiled("t64", 64), 700, 500, 128, 32, false, {0, 0, 0, 0}, {},
               ASD_SCALE_NONE});
  v.push_back({"tiled 64, padded edges", tiled("t64p", 64), 700, 500, 128, 32, true, {0, 0, 0, 0}, {},
               ASD_SCALE_NONE});
  v.push_back({"tiled 48, srcwin not block aligned", tiled("t48", 48), 700, 500, 100, 30, false, {37, 53, 401, 333},
               {}, ASD_SCALE_NONE});
  v.push_back({"striped 16 rows", striped("s16", 16), 700, 500, 128, 32, false, {0, 0, 0, 0}, {}, ASD_SCALE_NONE});
  v.push_back({"striped 1 row, padded", striped("s1", 1), 700, 500, 128, 32, true, {0, 0, 0, 0}, {},
               ASD_SCALE_NONE});
  v.push_back({"striped 16 rows, band selection 3,1 + minmax", striped("s16b", 16), 700, 500, 128, 32, false,
               {0, 0, 0, 0}, {3, 1}, ASD_SCALE_MINMAX});
  {
    Src s = tiled("u16", 64);
    s.dt = GDT_UInt16;
    s.bands = 4;
    v.push_back({"UInt16 4 bands, bands 4,2,1, explicit scale", s, 600, 450, 128, 32, false, {0, 0, 0, 0}, {4, 2, 1},
                 ASD_SCALE_EXPLICIT});
  }
  {
    Src s = striped("u16s", 7);
    s.dt = GDT_UInt16;
    s.bands = 4;
    v.push_back({"UInt16 striped 7 rows, percentile", s, 600, 450, 128, 32, true, {0, 0, 0, 0}, {1, 2, 3},
                 ASD_SCALE_PERCENTILE});
  }
  {
    Src s = tiled("nd", 64);
    s.nodata = 0;
    v.push_back({"nodata value", s, 600, 450, 128, 32, false, {0, 0, 0, 0}, {}, ASD_SCALE_NONE});
  }
  {
    Src s = tiled("ndf", 64);
    s.dt = GDT_Float32;
    s.nodata = 7;
    v.push_back({"Float32 nodata, minmax", s, 600, 450, 128, 32, false, {0, 0, 0, 0}, {}, ASD_SCALE_MINMAX});
  }
  {
    Src s = striped("mask", 16);
    s.mask = true;
    v.push_back({"internal mask", s, 600, 450, 128, 32, false, {0, 0, 0, 0}, {}, ASD_SCALE_NONE});
  }
  {
    Src s = tiled("alpha", 64);
    s.bands = 4;
    s.alpha = true;
    s.co.push_back("PHOTOMETRIC=RGB");
    v.push_back({"alpha band", s, 600, 450, 128, 32, false, {0, 0, 0, 0}, {1, 2, 3}, ASD_SCALE_NONE});
  }
  return v;
}

void fill_options(const Case &c, asd_encode_options *o) {
  asd_encode_options_init(o);
  o->band_count = (int)c.bands.size();
  for (size_t i = 0; i < c.bands.size(); i++) o->bands[i] = c.bands[i];
  o->scale = c.scale;
  if (c.scale == ASD_SCALE_EXPLICIT) {
    o->src_min[0] = 10;
    o->src_max[0] = 1900;
    o->scale_count = 1;
  }
  if (c.pad) o->pad_to_width = o->pad_to_height = c.tile;
  o->skip_nodata = 1;
  o->skip_constant = 1;
}

asd_plan *plan_for(GDALDatasetH ds, const Case &c) {
  asd_plan_options po;
  asd_plan_options_init(&po);
  po.tile_width = po.tile_height = c.tile;
  po.overlap = c.overlap;
  po.pad_edges = c.pad;
  if (c.srcwin[2] > 0) {
    po.has_srcwin = 1;
    memcpy(po.srcwin, c.srcwin, sizeof po.srcwin);
  }
  return asd_plan_new(ds, &po);
}

}  // namespace

// Every tile of every case: the pixels (values and validity) cut from blocks
// equal asd_read_window's, the payloads equal the window path's, and each
// native block under the plan is read exactly once.
TEST(EncodeBlocks, TilesFromBlocksEqualWindowReads) {
  for (const Case &c : cases()) {
    SCOPED_TRACE(c.what);
    make(c.src, c.w, c.h);
    GDALDatasetH ds = GDALOpen(c.src.name.c_str(), GA_ReadOnly);
    ASSERT_NE(nullptr, ds);
    asd_plan *plan = plan_for(ds, c);
    ASSERT_NE(nullptr, plan);
    asd_encode_options o;
    fill_options(c, &o);
    asd_encoder *blocks = encoder(c.src.name, ASD_READ_BLOCKS, &o);
    asd_encoder *window = encoder(c.src.name, ASD_READ_WINDOW, &o);
    ASSERT_NE(nullptr, blocks);
    ASSERT_NE(nullptr, window);
    std::vector<int> bands(o.bands, o.bands + asd_encoder_band_count(blocks));
    if (o.band_count == 0)
      for (int b = 0; b < asd_encoder_band_count(blocks); b++) bands[b] = b + 1;
    GDALDataType dt = (c.scale == ASD_SCALE_NONE && c.src.dt == GDT_Byte) ? GDT_Byte : GDT_Float64;
    int skipped = 0, with_mask = 0;
    for (int i = 0; i < asd_plan_count(plan); i++) {
      const asd_tile *t = asd_plan_tile(plan, i);
      asd_window_pixels a, b;
      ASSERT_EQ(0, asd_encoder_read_pixels(blocks, t, &a)) << "tile " << i;
      ASSERT_EQ(0, asd_read_window(ds, bands.data(), (int)bands.size(), t->x, t->y, t->w, t->h, dt, &b));
      ASSERT_EQ(b.dt, a.dt);
      ASSERT_EQ(b.npix, a.npix);
      ASSERT_EQ(0, memcmp(a.values, b.values, a.npix * a.nbands * GDALGetDataTypeSizeBytes(a.dt))) << "tile " << i;
      ASSERT_EQ(b.valid == nullptr, a.valid == nullptr) << "tile " << i;
      if (a.valid) {
        with_mask++;
        ASSERT_EQ(0, memcmp(a.valid, b.valid, a.npix * a.nbands)) << "tile " << i;
      }
      asd_window_pixels_free(&a);
      asd_window_pixels_free(&b);
      asd_encode_status s1, s2;
      std::string p1 = payload(blocks, t, &s1), p2 = payload(window, t, &s2);
      ASSERT_NE(ASD_ENCODE_ERROR, s1);
      ASSERT_EQ(s2, s1) << "tile " << i;
      ASSERT_EQ(p2, p1) << "tile " << i;
      skipped += s1 == ASD_ENCODE_SKIPPED;
    }
    if (c.src.nodata >= 0 || c.src.mask || c.src.alpha) {
      EXPECT_GT(with_mask, 0);
    }
    asd_encoder_read_stats sb, sw;
    asd_encoder_get_read_stats(blocks, &sb);
    asd_encoder_get_read_stats(window, &sw);
    EXPECT_EQ(ASD_READ_BLOCKS, sb.mode);
    EXPECT_EQ(ASD_READ_WINDOW, sw.mode);
    // Each tile was read twice (pixels, then payload) in row-major order.
    EXPECT_EQ(2LL * asd_plan_count(plan), sb.tiles_from_blocks);
    EXPECT_EQ(0, sb.window_reads);
    EXPECT_EQ(blocks_under(ds, plan), sb.blocks_read);
    EXPECT_EQ(0, sb.blocks_reread);
    EXPECT_GT(sb.block_bytes_read, 0);
    EXPECT_EQ(0, sw.blocks_read);
    EXPECT_EQ(asd_plan_count(plan), sw.window_reads);
    asd_encoder_free(blocks);
    asd_encoder_free(window);
    asd_plan_free(plan);
    GDALClose(ds);
    VSIUnlink(c.src.name.c_str());
  }
}

namespace {

// A VSI handler /vsiasdcount/ that forwards to the path after the prefix
// and counts the bytes read through it: what GDAL fetched from the file.
std::atomic<long long> g_bytes_read{0};

void *count_open(void *, const char *name, const char *access) {
  return VSIFOpenL(name, access);
}
int count_stat(void *, const char *name, VSIStatBufL *st, int flags) { return VSIStatExL(name, st, flags); }
vsi_l_offset count_tell(void *f) { return VSIFTellL((VSILFILE *)f); }
int count_seek(void *f, vsi_l_offset off, int whence) { return VSIFSeekL((VSILFILE *)f, off, whence); }
size_t count_read(void *f, void *buf, size_t size, size_t n) {
  size_t got = VSIFReadL(buf, size, n, (VSILFILE *)f);
  g_bytes_read += (long long)(got * size);
  return got;
}
int count_eof(void *f) { return VSIFEofL((VSILFILE *)f); }
int count_close(void *f) { return VSIFCloseL((VSILFILE *)f); }

void install_counter() {
  static bool done = false;
  if (done) return;
  VSIFilesystemPluginCallbacksStruct *cb = VSIAllocFilesystemPluginCallbacksStruct();
  cb->open = count_open;
  cb->stat = count_stat;
  cb->tell = count_tell;
  cb->seek = count_seek;
  cb->read = count_read;
  cb->eof = count_eof;
  cb->close = count_close;
  ASSERT_EQ(0, VSIInstallPluginHandler("/vsiasdcount/", cb));
  VSIFreeFilesystemPluginCallbacksStruct(cb);
  done = true;
}

// Encodes every tile of the plan in order; returns the bytes GDAL read from
// the file and fills the encoder's stats.
long long run_counted(const std::string &path, asd_plan *plan, asd_read_mode mode, asd_encoder_read_stats *st,
                      std::vector<std::string> *payloads) {
  asd_encoder *e = encoder("/vsiasdcount/" + path, mode);
  EXPECT_NE(nullptr, e);
  if (!e) return -1;
  const long long before = g_bytes_read;
  for (int i = 0; i < asd_plan_count(plan); i++) {
    asd_encode_status s;
    payloads->push_back(payload(e, asd_plan_tile(plan, i), &s));
    EXPECT_EQ(ASD_ENCODE_OK, s);
  }
  const long long bytes = g_bytes_read - before;
  asd_encoder_get_read_stats(e, st);
  asd_encoder_free(e);
  return bytes;
}

}  // namespace

// The proof that does not trust the encoder's own counters: with a GDAL block
// cache far smaller than a row of blocks, the window path makes GDAL fetch
// (and decode) overlapped blocks several times, while block reads fetch each
// compressed block once: about the file's size in total.
TEST(EncodeBlocks, EachBlockFetchedOnceFromTheFile) {
  install_counter();
  Src s;
  s.name = "/vsimem/blk_count.tif";
  s.co = {"TILED=YES", "BLOCKXSIZE=64", "BLOCKYSIZE=64", "COMPRESS=DEFLATE"};
  const int W = 2048, H = 640;
  make(s, W, H);
  vsi_l_offset file_size = 0;
  {
    VSIStatBufL st;
    ASSERT_EQ(0, VSIStatL(s.name.c_str(), &st));
    file_size = st.st_size;
  }
  GDALDatasetH ds = GDALOpen(s.name.c_str(), GA_ReadOnly);
  asd_plan_options po;
  asd_plan_options_init(&po);
  po.tile_width = po.tile_height = 128;
  po.overlap = 48;
  asd_plan *plan = asd_plan_new(ds, &po);
  ASSERT_NE(nullptr, plan);
  const GIntBig saved = GDALGetCacheMax64();
  GDALSetCacheMax64(256 * 1024);  // a row of blocks is 1.5 MB decoded
  asd_encoder_read_stats sb, sw;
  std::vector<std::string> pb, pw;
  const long long bytes_blocks = run_counted(s.name, plan, ASD_READ_BLOCKS, &sb, &pb);
  const long long bytes_window = run_counted(s.name, plan, ASD_READ_WINDOW, &sw, &pw);
  GDALSetCacheMax64(saved);
  EXPECT_EQ(pw, pb);
  EXPECT_EQ(blocks_under(ds, plan), sb.blocks_read);
  EXPECT_EQ(0, sb.blocks_reread);
  // Opening the file reads the header and the block offsets once more per
  // handle; everything else is block data, fetched once.
  EXPECT_LE(bytes_blocks, (long long)file_size + 64 * 1024) << "file " << file_size;
  EXPECT_GT(bytes_window, bytes_blocks * 3 / 2) << "the window path should re-fetch blocks with this small a cache";
  asd_plan_free(plan);
  GDALClose(ds);
  VSIUnlink(s.name.c_str());
}

// Memory: the blocks held stay within about two rows of tiles' worth of
// block rows, not the image; a tiny cap still gives the same payloads
// (blocks re-read); a file stored as one strip larger than the cap falls
// back to window reads.
TEST(EncodeBlocks, MemoryCapAndFallback) {
  Src s;
  s.name = "/vsimem/blk_mem.tif";
  s.co = {"TILED=YES", "BLOCKXSIZE=64", "BLOCKYSIZE=64", "COMPRESS=DEFLATE"};
  const int W = 1024, H = 2048, T = 128, O = 32;
  make(s, W, H);
  // Blocks of 1024 x 1024 (3 MB decoded): huge next to a 1 MB cap.
  Src one;
  one.name = "/vsimem/blk_huge.tif";
  one.co = {"TILED=YES", "BLOCKXSIZE=1024", "BLOCKYSIZE=1024", "COMPRESS=DEFLATE"};
  make(one, W, H);
  // A file stored as one DEFLATE strip: GDAL may expose it as one block or
  // as virtual one-row blocks; either way each is read once.
  Src strip;
  strip.name = "/vsimem/blk_onestrip.tif";
  strip.co = {"TILED=NO", "BLOCKYSIZE=" + std::to_string(H), "COMPRESS=DEFLATE"};
  make(strip, W, H);
  GDALDatasetH ds = GDALOpen(s.name.c_str(), GA_ReadOnly);
  asd_plan_options po;
  asd_plan_options_init(&po);
  po.tile_width = po.tile_height = T;
  po.overlap = O;
  asd_plan *plan = asd_plan_new(ds, &po);
  ASSERT_NE(nullptr, plan);
  std::vector<std::string> reference;
  {
    asd_encoder *e = encoder(s.name, ASD_READ_WINDOW);
    for (int i = 0; i < asd_plan_count(plan); i++) {
      asd_encode_status st;
      reference.push_back(payload(e, asd_plan_tile(plan, i), &st));
    }
    asd_encoder_free(e);
  }
  auto run = [&](const std::string &path, int cache_mb, asd_encoder_read_stats *st,
                 asd_read_mode mode = ASD_READ_AUTO) {
    asd_encoder *e = encoder(path, mode, nullptr, cache_mb);
    EXPECT_NE(nullptr, e);
    int same = 0;
    for (int i = 0; i < asd_plan_count(plan); i++) {
      asd_encode_status status;
      same += payload(e, asd_plan_tile(plan, i), &status) == reference[i];
    }
    asd_encoder_get_read_stats(e, st);
    asd_encoder_free(e);
    return same;
  };
  const int n = asd_plan_count(plan);
  const long long px_bytes = 3;  // 3 Byte bands, no mask
  asd_encoder_read_stats st;
  // Default cap, tiles in order from one thread: once a row of tiles is
  // complete its blocks go, so one row of tiles' block rows at most.
  ASSERT_EQ(n, run(s.name, 0, &st));
  EXPECT_EQ(ASD_READ_BLOCKS, st.mode);
  EXPECT_EQ(0, st.window_reads);
  EXPECT_EQ(0, st.blocks_reread);
  const long long rows_held = T + 2 * 64;
  EXPECT_LE(st.cache_peak_bytes, rows_held * W * px_bytes);
  EXPECT_LT(st.cache_peak_bytes, (long long)W * H * px_bytes / 4);
  // A 1 MB cap, smaller than a row of tiles' blocks (1024 x 192 x 3 = 576 KB
  // per tile row band... two of them exceed it): same payloads, within cap.
  ASSERT_EQ(n, run(s.name, 1, &st));
  EXPECT_EQ(0, st.window_reads);
  EXPECT_LE(st.cache_peak_bytes, 1 << 20);
  EXPECT_GT(st.blocks_read, 0);
  // Blocks of 3 MB, cap 1 MB: every tile is a window read, nothing held.
  ASSERT_EQ(n, run(one.name, 1, &st));
  EXPECT_EQ(0, st.blocks_read);
  EXPECT_EQ(n, st.window_reads);
  EXPECT_EQ(0, st.cache_peak_bytes);
  // The same blocks under a cap that holds them: each read once.
  ASSERT_EQ(n, run(one.name, 16, &st));
  EXPECT_EQ(2, st.blocks_read);
  EXPECT_EQ(0, st.blocks_reread);
  EXPECT_EQ(0, st.window_reads);
  // The single strip, which GDAL exposes here as one-row blocks: auto
  // reads such short strips by windows (see encode.c); forced to blocks,
  // same payloads and no block read twice.
  ASSERT_EQ(n, run(strip.name, 0, &st));
  EXPECT_EQ(ASD_READ_WINDOW, st.mode);
  EXPECT_EQ(n, st.window_reads);
  ASSERT_EQ(n, run(strip.name, 0, &st, ASD_READ_BLOCKS));
  EXPECT_EQ(ASD_READ_BLOCKS, st.mode);
  EXPECT_EQ(0, st.blocks_reread);
  EXPECT_EQ(0, st.window_reads);
  printf("single DEFLATE strip of %d x %d: GDAL blocks %d x %d, %lld read\n", W, H, st.block_width,
         st.block_height, st.blocks_read);
  asd_plan_free(plan);
  GDALClose(ds);
  VSIUnlink(s.name.c_str());
  VSIUnlink(one.name.c_str());
  VSIUnlink(strip.name.c_str());
}

// Several threads taking tiles in plan order from one counter (as the
// utility's encoder threads do) give the payloads of a sequential window
// read, and blocks are not read again for a lag of a row of tiles.
TEST(EncodeBlocks, ThreadsGiveTheSamePayloads) {
  Src s;
  s.name = "/vsimem/blk_threads.tif";
  s.co = {"TILED=NO", "BLOCKYSIZE=8", "COMPRESS=DEFLATE"};
  make(s, 900, 700);
  GDALDatasetH ds = GDALOpen(s.name.c_str(), GA_ReadOnly);
  asd_plan_options po;
  asd_plan_options_init(&po);
  po.tile_width = po.tile_height = 96;
  po.overlap = 24;
  asd_plan *plan = asd_plan_new(ds, &po);
  ASSERT_NE(nullptr, plan);
  const int n = asd_plan_count(plan);
  std::vector<std::string> reference(n), got(n);
  asd_encoder *w = encoder(s.name, ASD_READ_WINDOW);
  for (int i = 0; i < n; i++) {
    asd_encode_status st;
    reference[i] = payload(w, asd_plan_tile(plan, i), &st);
  }
  asd_encoder_free(w);
  asd_encode_options o;
  asd_encode_options_init(&o);
  o.max_handles = 3;  // fewer handles than threads
  asd_encoder *e = encoder(s.name, ASD_READ_BLOCKS, &o);
  ASSERT_NE(nullptr, e);
  std::atomic<int> next{0}, failures{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 5; k++)
    threads.emplace_back([&] {
      for (int i = next++; i < n; i = next++) {
        asd_encode_status st;
        got[i] = payload(e, asd_plan_tile(plan, i), &st);
        if (st < 0) failures++;
      }
    });
  for (auto &t : threads) t.join();
  EXPECT_EQ(0, failures.load());
  for (int i = 0; i < n; i++) EXPECT_EQ(reference[i], got[i]) << "tile " << i;
  asd_encoder_read_stats st;
  asd_encoder_get_read_stats(e, &st);
  EXPECT_EQ(n, st.tiles_from_blocks);
  EXPECT_GE(st.blocks_read, blocks_under(ds, plan));
  asd_encoder_free(e);
  asd_plan_free(plan);
  GDALClose(ds);
  VSIUnlink(s.name.c_str());
}

TEST(EncodeBlocks, ModeNamesAndConfigOptions) {
  EXPECT_EQ(ASD_READ_AUTO, asd_read_mode_from_name("auto"));
  EXPECT_EQ(ASD_READ_BLOCKS, asd_read_mode_from_name("BLOCKS"));
  EXPECT_EQ(ASD_READ_WINDOW, asd_read_mode_from_name("window"));
  EXPECT_EQ(-1, asd_read_mode_from_name("strips"));
  EXPECT_EQ(-1, asd_read_mode_from_name(nullptr));
  Src s;
  s.name = "/vsimem/blk_cfg.tif";
  s.co = {"TILED=YES"};
  make(s, 300, 200);
  asd_encoder_read_stats st;
  asd_encoder *e = encoder(s.name, ASD_READ_AUTO);
  ASSERT_NE(nullptr, e);
  asd_encoder_get_read_stats(e, &st);
  EXPECT_EQ(ASD_READ_BLOCKS, st.mode);
  EXPECT_EQ(256LL << 20, st.cache_max_bytes);
  EXPECT_EQ(256, st.block_width);
  asd_encoder_free(e);
  CPLSetConfigOption("ASD_READ_MODE", "window");
  CPLSetConfigOption("ASD_BLOCK_CACHEMAX", "32");
  e = encoder(s.name, ASD_READ_AUTO);
  ASSERT_NE(nullptr, e);
  asd_encoder_get_read_stats(e, &st);
  EXPECT_EQ(ASD_READ_WINDOW, st.mode);
  EXPECT_EQ(32LL << 20, st.cache_max_bytes);
  asd_encoder_free(e);
  // An explicit mode beats the config option.
  e = encoder(s.name, ASD_READ_BLOCKS);
  asd_encoder_get_read_stats(e, &st);
  EXPECT_EQ(ASD_READ_BLOCKS, st.mode);
  asd_encoder_free(e);
  CPLSetConfigOption("ASD_READ_MODE", "sideways");
  CPLPushErrorHandler(CPLQuietErrorHandler);
  e = encoder(s.name, ASD_READ_AUTO);
  CPLPopErrorHandler();
  EXPECT_EQ(nullptr, e);
  EXPECT_NE(nullptr, strstr(CPLGetLastErrorMsg(), "ASD_READ_MODE"));
  CPLSetConfigOption("ASD_READ_MODE", nullptr);
  CPLSetConfigOption("ASD_BLOCK_CACHEMAX", nullptr);
  VSIUnlink(s.name.c_str());
}
