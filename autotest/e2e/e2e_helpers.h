// Helpers shared by the end-to-end tests of gdal_asyncdetect: run the real
// utility as a child process (with a timeout and captured output), read the
// ground truth and the detections, and score one against the other with an
// IoU match in EPSG:4326.
#ifndef ASD_E2E_HELPERS_H
#define ASD_E2E_HELPERS_H

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "asd_local_endpoint.h"
#include "asd_test_paths.h"
#include <json-c/json.h>
#include "cpl_conv.h"
#include "cpl_string.h"
#include "gdal.h"
#include "ogr_api.h"
#include "ogr_srs_api.h"

namespace asd_e2e {

inline std::string app_bin() {
  const char *env = std::getenv("ASD_APP_BIN");
  if (env) return env;
#ifdef ASD_APP_BIN
  return ASD_APP_BIN;
#else
  return asd_test::binary_dir() + "/gdal_asyncdetect";
#endif
}

inline std::string read_file(const std::string &path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct RunResult {
  int status = -1;     // exit status, or 128 + signal
  std::string out;     // stdout
  std::string err;     // stderr
};

// A child process running the utility; output goes to files in dir.
class AppProcess {
 public:
  AppProcess(const std::vector<std::string> &args, const std::string &dir) : dir_(dir) {
    out_ = dir + "/app.stdout." + std::to_string(counter()++);
    err_ = out_ + ".err";
    pid_ = fork();
    if (pid_ == 0) {
      int o = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(o, 1);
      dup2(e, 2);
      std::vector<char *> argv;
      std::string bin = app_bin();
      argv.push_back(const_cast<char *>(bin.c_str()));
      for (auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
  }
  pid_t pid() const { return pid_; }
  // Waits at most timeout_s; kills the child (SIGKILL) after that.
  RunResult wait(double timeout_s = 300) {
    RunResult r;
    auto t0 = std::chrono::steady_clock::now();
    int st = 0;
    for (;;) {
      pid_t w = waitpid(pid_, &st, WNOHANG);
      if (w == pid_) break;
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > timeout_s) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &st, 0);
        r.err = "TIMEOUT\n";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = read_file(out_);
    r.err += read_file(err_);
    return r;
  }
  std::string stdout_so_far() const { return read_file(out_); }
  std::string stderr_so_far() const { return read_file(err_); }

 private:
  static int &counter() {
    static int c = 0;
    return c;
  }
  std::string dir_, out_, err_;
  pid_t pid_ = -1;
};

inline RunResult run_app(const std::vector<std::string> &args, const std::string &dir, double timeout_s = 300) {
  AppProcess p(args, dir);
  return p.wait(timeout_s);
}

// Lines of text that are not empty.
inline int count_lines(const std::string &s) {
  int n = 0;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) n++;
  return n;
}

struct Box {
  OGRGeometryH geom = nullptr;  // EPSG:4326, traditional lon/lat order
  std::string cls;
  long id = 0;
};

class Boxes {
 public:
  std::vector<Box> items;
  Boxes() = default;
  Boxes(const Boxes &) = delete;
  Boxes &operator=(const Boxes &) = delete;
  Boxes(Boxes &&o) noexcept : items(std::move(o.items)) { o.items.clear(); }
  ~Boxes() {
    for (auto &b : items) OGR_G_DestroyGeometry(b.geom);
  }
};

// Reads every feature of layer (or the first layer) of path, in EPSG:4326
// (lon/lat order).  class_field names the class attribute.
inline Boxes read_boxes(const std::string &path, const std::string &layer, const std::string &class_field,
                        std::string *error = nullptr) {
  Boxes out;
  GDALDatasetH ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  if (!ds) {
    if (error) *error = "cannot open " + path;
    return out;
  }
  OGRLayerH lyr = layer.empty() ? GDALDatasetGetLayer(ds, 0) : GDALDatasetGetLayerByName(ds, layer.c_str());
  if (!lyr) {
    if (error) *error = "no layer " + layer + " in " + path;
    GDALClose(ds);
    return out;
  }
  OGRSpatialReferenceH wgs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(wgs, 4326);
  OSRSetAxisMappingStrategy(wgs, OAMS_TRADITIONAL_GIS_ORDER);
  OGRSpatialReferenceH lsrs = OGR_L_GetSpatialRef(lyr);
  OGRCoordinateTransformationH ct = nullptr;
  if (lsrs && !OSRIsSame(lsrs, wgs)) ct = OCTNewCoordinateTransformation(lsrs, wgs);
  int ci = OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(lyr), class_field.c_str());
  OGR_L_ResetReading(lyr);
  OGRFeatureH f;
  while ((f = OGR_L_GetNextFeature(lyr)) != nullptr) {
    OGRGeometryH g = OGR_F_GetGeometryRef(f);
    if (g) {
      Box b;
      b.geom = OGR_G_Clone(g);
      if (ct) OGR_G_Transform(b.geom, ct);
      if (ci >= 0) b.cls = OGR_F_GetFieldAsString(f, ci);
      b.id = static_cast<long>(OGR_F_GetFID(f));
      out.items.push_back(std::move(b));
      b.geom = nullptr;
    }
    OGR_F_Destroy(f);
  }
  if (ct) OCTDestroyCoordinateTransformation(ct);
  OSRDestroySpatialReference(wgs);
  GDALClose(ds);
  return out;
}

inline double iou(OGRGeometryH a, OGRGeometryH b) {
  OGREnvelope ea, eb;
  OGR_G_GetEnvelope(a, &ea);
  OGR_G_GetEnvelope(b, &eb);
  if (ea.MaxX < eb.MinX || eb.MaxX < ea.MinX || ea.MaxY < eb.MinY || eb.MaxY < ea.MinY) return 0;
  OGRGeometryH inter = OGR_G_Intersection(a, b);
  if (!inter) return 0;
  double ai = OGR_G_Area(inter);
  OGR_G_DestroyGeometry(inter);
  double u = OGR_G_Area(a) + OGR_G_Area(b) - ai;
  return u > 0 ? ai / u : 0;
}

struct Score {
  int truth = 0, detections = 0, matched = 0, class_ok = 0;
  double recall() const { return truth ? double(matched) / truth : 0; }
  double precision() const { return detections ? double(matched) / detections : 0; }
  std::string describe() const {
    std::ostringstream s;
    s << "truth=" << truth << " detections=" << detections << " matched=" << matched << " class_ok=" << class_ok
      << " recall=" << recall() << " precision=" << precision();
    return s.str();
  }
};

// Greedy one-to-one matching, best IoU first.
inline Score score(const Boxes &truth, const Boxes &det, double min_iou = 0.5) {
  Score s;
  s.truth = static_cast<int>(truth.items.size());
  s.detections = static_cast<int>(det.items.size());
  struct Pair {
    double iou;
    size_t t, d;
  };
  std::vector<Pair> pairs;
  for (size_t t = 0; t < truth.items.size(); t++)
    for (size_t d = 0; d < det.items.size(); d++) {
      double v = iou(truth.items[t].geom, det.items[d].geom);
      if (v >= min_iou) pairs.push_back({v, t, d});
    }
  std::sort(pairs.begin(), pairs.end(), [](const Pair &a, const Pair &b) { return a.iou > b.iou; });
  std::vector<bool> tu(truth.items.size()), du(det.items.size());
  for (auto &p : pairs) {
    if (tu[p.t] || du[p.d]) continue;
    tu[p.t] = du[p.d] = true;
    s.matched++;
    if (truth.items[p.t].cls == det.items[p.d].cls) s.class_ok++;
  }
  return s;
}

// A fresh temporary directory, removed on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/asd-e2e-XXXXXX";
    char *p = mkdtemp(tmpl);
    path_ = p ? p : "/tmp";
  }
  ~TempDir() {
    if (path_ != "/tmp" && !std::getenv("ASD_KEEP_TMP")) {
      std::string cmd = "rm -rf '" + path_ + "'";
      int rc = std::system(cmd.c_str());
      (void)rc;
    }
  }
  const std::string &path() const { return path_; }

 private:
  std::string path_;
};

// ---- The local endpoint and the utility as every end-to-end test runs them.

inline const char *const kEndpoint = "e2e-blobs";
inline const char *const kInputBucket = "e2e-input";

inline std::vector<std::string> endpoint_args(const std::string &extra_spec = "",
                                       const std::string &faults = "") {
  std::vector<std::string> a = {
      "-bucket", kInputBucket, "-endpoint",
      std::string(kEndpoint) +
          ",model=blobs,output=s3://e2e-output/results,failure=s3://e2e-output/failures,instances=1,"
          "concurrency=4" +
          extra_spec};
  if (!faults.empty()) {
    a.push_back("-faults");
    a.push_back(faults);
  }
  return a;
}

// The options every run shares: fast polling so tests stay short.
inline std::vector<std::string> app_args(const std::string &src, const std::string &dst,
                                  std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"-endpoint",         kEndpoint, "-input-bucket", kInputBucket,
                                "-polling-interval", "0.05",    "-max-polling-interval", "0.3",
                                "-max-wait-time",    "120",     "-q"};
  a.insert(a.end(), extra.begin(), extra.end());
  a.push_back(src);
  a.push_back(dst);
  return a;
}

inline std::vector<std::string> vector_concat(std::vector<std::string> a, const std::vector<std::string> &b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

inline std::string sample(const char *name) { return asd_test::data_dir() + "/" + name; }

struct Accuracy {
  asd_e2e::Score score;
  std::string error;
};

inline Accuracy accuracy(const std::string &gpkg, const std::string &layer = "detections") {
  Accuracy a;
  Boxes truth = asd_e2e::read_boxes(sample("ground_truth.geojson"), "", "class", &a.error);
  Boxes det = asd_e2e::read_boxes(gpkg, layer, "class", &a.error);
  a.score = asd_e2e::score(truth, det, 0.5);
  return a;
}

inline long long endpoint_stat(asd_test::LocalEndpoint &ep, const char *field) {
  std::string js = ep.stats_json();
  json_object *root = json_tokener_parse(js.c_str());
  long long v = -1;
  json_object *rt = nullptr, *eps = nullptr, *e = nullptr, *f = nullptr;
  if (root && json_object_object_get_ex(root, "runtime", &rt) && json_object_object_get_ex(rt, "endpoints", &eps) && json_object_object_get_ex(eps, kEndpoint, &e) &&
      json_object_object_get_ex(e, field, &f))
    v = json_object_get_int64(f);
  json_object_put(root);
  return v;
}

// tile -> state, read from the journal table of an output GeoPackage.
inline std::map<int, std::string> journal_states(const std::string &gpkg) {
  std::map<int, std::string> out;
  GDALDatasetH ds = GDALOpenEx(gpkg.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  if (!ds) return out;
  OGRLayerH l = GDALDatasetGetLayerByName(ds, "asd_journal");
  if (l) {
    OGRFeatureH f;
    int ti = OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(l), "tile");
    int si = OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(l), "state");
    while ((f = OGR_L_GetNextFeature(l)) != nullptr) {
      out[OGR_F_GetFieldAsInteger(f, ti)] = OGR_F_GetFieldAsString(f, si);
      OGR_F_Destroy(f);
    }
  }
  GDALClose(ds);
  return out;
}

// status -> count in the tile-status layer ("" = the first layer of path).
inline std::map<std::string, int> tile_statuses(const std::string &path, const std::string &layer = "tiles") {
  std::map<std::string, int> out;
  GDALDatasetH ds = GDALOpenEx(path.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr);
  if (!ds) return out;
  // "" = the first layer (a one-layer file such as out_tiles.geojson).
  OGRLayerH l = layer.empty() ? GDALDatasetGetLayer(ds, 0) : GDALDatasetGetLayerByName(ds, layer.c_str());
  if (l) {
    OGRFeatureH f;
    int si = OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(l), "status");
    while ((f = OGR_L_GetNextFeature(l)) != nullptr) {
      out[OGR_F_GetFieldAsString(f, si)]++;
      OGR_F_Destroy(f);
    }
  }
  GDALClose(ds);
  return out;
}

}  // namespace asd_e2e

#endif
