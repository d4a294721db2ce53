// The whole tile -> model -> parse -> merge path on real pixels: every tile
// of data/scene_utm.tif goes through the local endpoint's `blobs` model
// (called in-process), its FeatureCollection through the parser, and the
// tiles, in shuffled completion orders, through the streaming merger.  The
// result must be the ground truth: one feature per object, its full pixel
// box and its class, for each grid the sample data was designed for.
#include <gtest/gtest.h>
#include <json-c/json.h>

#include <gdal.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "asd_test_paths.h"
#include "asyncdetect/asd_features.h"
#include "asyncdetect/asd_merge.h"
#include "models.h"

namespace {

struct Truth {
  std::string cls;
  double b[4];
};

std::map<int, Truth> LoadTruth() {
  std::map<int, Truth> out;
  json_object *root = json_object_from_file((std::string(ASD_DATA_DIR) + "/ground_truth.geojson").c_str());
  if (!root) return out;
  json_object *feats = json_object_object_get(root, "features");
  for (size_t i = 0; i < json_object_array_length(feats); i++) {
    json_object *p = json_object_object_get(json_object_array_get_idx(feats, i), "properties");
    Truth t;
    t.cls = json_object_get_string(json_object_object_get(p, "class"));
    json_object *bb = json_object_object_get(p, "pixel_bbox");
    for (int k = 0; k < 4; k++) t.b[k] = json_object_get_double(json_object_array_get_idx(bb, k));
    out[json_object_get_int(json_object_object_get(p, "id"))] = t;
  }
  json_object_put(root);
  return out;
}

std::vector<int> Origins(int size, int tile, int overlap) {
  std::vector<int> v;
  for (int x = 0;; x += tile - overlap) {
    if (x + tile >= size) {
      v.push_back(size - tile);
      break;
    }
    v.push_back(x);
  }
  return v;
}

struct TileOut {
  asd_tile_ref ref;
  std::string json;
};

}  // namespace

TEST(MergeBlobs, SceneThroughBlobsModelMergesToGroundTruth) {
  std::map<int, Truth> truth = LoadTruth();
  ASSERT_EQ(91u, truth.size());
  GDALAllRegister();
  GDALDatasetH ds = GDALOpen((std::string(ASD_DATA_DIR) + "/scene_utm.tif").c_str(), GA_ReadOnly);
  ASSERT_NE(nullptr, ds);
  const int W = GDALGetRasterXSize(ds), H = GDALGetRasterYSize(ds);
  ep_blobs_params bp;
  ep_blobs_params_init(&bp);

  const int grids[][2] = {{512, 64}, {1024, 128}};
  for (auto g : grids) {
    const int T = g[0];
    std::vector<int> xs = Origins(W, T, g[1]), ys = Origins(H, T, g[1]);
    std::vector<TileOut> outs;
    std::vector<asd_merge_tile> tiles;
    std::vector<unsigned char> rgb((size_t)T * T * 3);
    int bands[3] = {1, 2, 3};
    for (size_t r = 0; r < ys.size(); r++)
      for (size_t c = 0; c < xs.size(); c++) {
        int index = (int)(r * xs.size() + c);
        ASSERT_EQ(CE_None, GDALDatasetRasterIO(ds, GF_Read, xs[c], ys[r], T, T, rgb.data(), T, T, GDT_Byte, 3, bands,
                                               3, 3 * T, 1));
        asd_buf buf;
        asd_buf_init(&buf);
        ASSERT_GE(ep_blobs_detect_rgb(rgb.data(), T, T, &bp, &buf), 0);
        TileOut o;
        o.ref = {index, (int)r, (int)c, (double)xs[c], (double)ys[r], (double)T, (double)T, "blobs-inference"};
        o.json.assign(reinterpret_cast<char *>(buf.data), buf.len);
        asd_buf_free(&buf);
        outs.push_back(o);
        tiles.push_back({index, (double)xs[c], (double)ys[r], (double)T, (double)T});
      }

    for (unsigned seed : {0u, 1u, 2u}) {
      std::vector<size_t> order(outs.size());
      for (size_t i = 0; i < order.size(); i++) order[i] = i;
      if (seed) std::shuffle(order.begin(), order.end(), std::mt19937(seed));
      asd_merge_options opt;
      asd_merge_options_init(&opt);
      char err[256];
      asd_merger *m = asd_merger_new(&opt, tiles.data(), tiles.size(), err, sizeof(err));
      ASSERT_NE(nullptr, m) << err;
      asd_detections out;
      asd_detections_init(&out);
      size_t parsed = 0;
      for (size_t k : order) {
        asd_detections dets;
        asd_detections_init(&dets);
        asd_parse_report rep;
        ASSERT_EQ(ASD_PARSE_OK, asd_features_parse(outs[k].json.data(), outs[k].json.size(), &outs[k].ref, nullptr,
                                                   &dets, &rep))
            << rep.message;
        EXPECT_EQ(0u, rep.rejected) << rep.message;
        parsed += dets.count;
        ASSERT_EQ(0, asd_merger_add_tile(m, outs[k].ref.index, &dets, err, sizeof(err))) << err;
        asd_merger_pop(m, &out);
        asd_detections_free(&dets);
      }
      asd_merger_finish(m);
      asd_merger_pop(m, &out);
      asd_merger_free(m);

      std::string what = "grid " + std::to_string(T) + "/" + std::to_string(g[1]) + " order " + std::to_string(seed);
      EXPECT_GT(parsed, truth.size()) << what;  // the overlaps really produced duplicates and pieces
      std::map<int, int> hits;
      for (size_t i = 0; i < out.count; i++) {
        const asd_detection &d = out.items[i];
        int match = -1;
        for (const auto &t : truth)
          if (d.minx == t.second.b[0] && d.miny == t.second.b[1] && d.maxx == t.second.b[2] && d.maxy == t.second.b[3])
            match = t.first;
        EXPECT_NE(-1, match) << what << ": box " << d.minx << "," << d.miny << "," << d.maxx << "," << d.maxy;
        if (match < 0) continue;
        hits[match]++;
        EXPECT_EQ(truth[match].cls, d.class_iri) << what << " object " << match;
        EXPECT_EQ(ASD_GEOM_POLYGON, d.kind);
        EXPECT_STREQ("blobs-inference", d.inference_id);
      }
      for (const auto &t : truth) EXPECT_EQ(1, hits[t.first]) << what << ": object " << t.first;
      EXPECT_EQ(truth.size(), out.count) << what;
      asd_detections_free(&out);
    }
  }
  GDALClose(ds);
}
