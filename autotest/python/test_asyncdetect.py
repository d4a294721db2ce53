#!/usr/bin/python3
"""
Tests of the Python module (python/asyncdetect) with Debian's python3 and
python3-gdal, against the real local endpoint on an ephemeral loopback port.

Each case is one CTest test (e2e.python.<case>, see autotest/CMakeLists.txt):
  path          Detect() on a file name: the ground truth's 91 detections, the
                Result's figures, the progress callback rising to 1.0;
  dataset       Detect() on an osgeo.gdal.Dataset that exists only in memory
                (MEM): the run happens in this process, on that handle;
  errors        asyncdetect.Error with the library's one line (unknown
                endpoint, bad option = usage error, unreadable source),
                TypeError for a src that is neither;
  cancel_resume the callback returns False mid-run: INTERRUPTED, the progress
                then measuring the tiles in flight (to 1.0), tiles left for
                -resume, which then completes from the journal;
  quicklook     -quicklook FILE.png -quicklook-width 750: the picture's size and
                every detection's class colour on its outline;
  pipeline      the ten-line pipeline of python/README.md, run as written.

Environment (set by CTest): ASD_LIBRARY, ASD_ENDPOINT_BIN, ASD_SOURCE_DIR.
"""

import ctypes
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

SOURCE_DIR = os.environ.get("ASD_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
ENDPOINT_BIN = os.environ.get("ASD_ENDPOINT_BIN", os.path.join(SOURCE_DIR, "build", "asyncdetect_endpoint"))
SCENE = os.path.join(SOURCE_DIR, "data", "scene_utm.tif")
sys.path.insert(0, os.path.join(SOURCE_DIR, "python"))

try:
    from osgeo import gdal, ogr
except ImportError as e:
    sys.stderr.write("test_asyncdetect: python3-gdal is missing ({})\n".format(e))
    sys.exit(1)
import asyncdetect  # noqa: E402

gdal.UseExceptions()
GROUND_TRUTH = 91


def _pdeathsig():
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LocalEndpoint:
    """The real asyncdetect_endpoint on an ephemeral loopback port; AWS_* set for the library."""

    def __init__(self, name="py", latency_ms=0, instances=2, concurrency=4):
        self.dir = tempfile.mkdtemp(prefix="asd-py-endpoint-")
        spec = ("{},model=blobs,output=s3://py-input/results,failure=s3://py-input/failures,"
                "instances={},concurrency={},latency_ms={}").format(name, instances, concurrency, latency_ms)
        self.proc = subprocess.Popen([ENDPOINT_BIN, "-port", "0", "-data-dir", self.dir, "-bucket", "py-input",
                                      "-endpoint", spec], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     preexec_fn=_pdeathsig)
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        self.url = self.proc.stdout.readline().decode().strip() if ready else ""
        if not self.url.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError("the local endpoint did not print its URL")
        os.environ.update(AWS_ENDPOINT_URL=self.url, AWS_ACCESS_KEY_ID="ASDLOCALACCESSKEY",
                          AWS_SECRET_ACCESS_KEY="asdlocal-secret-not-for-aws", AWS_REGION="us-east-1")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def feature_count(path, layer="detections"):
    ds = ogr.Open(path)
    n = ds.GetLayerByName(layer).GetFeatureCount()
    ds = None
    return n


class AsyncDetectTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="asd-py-test-")
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            os.environ.pop(var, None)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def options(self, endpoint="py", *more):
        return ["-endpoint", endpoint, "-input-bucket", "py-input", "-polling-interval", "0.05",
                "-max-polling-interval", "0.5"] + list(more)

    def test_path(self):
        ep = LocalEndpoint()
        progress = []
        try:
            out = os.path.join(self.tmp, "out.gpkg")
            result = asyncdetect.Detect(out, SCENE, options=self.options(),
                                        callback=lambda c, m, d: progress.append((c, d)), callback_data="x")
        finally:
            ep.stop()
        self.assertEqual(result.status, asyncdetect.OK)
        self.assertTrue(result.ok)
        self.assertEqual((result.tiles_planned, result.tiles_succeeded, result.tiles_failed), (40, 40, 0))
        self.assertEqual(result.features_kept, GROUND_TRUTH)
        self.assertEqual(result.tiles_location, out)
        self.assertIn("91 kept after merging", result.text)
        self.assertEqual(feature_count(out), GROUND_TRUTH)
        self.assertEqual(feature_count(out, "tiles"), 40)
        values = [c for c, _ in progress]
        self.assertGreater(len(values), 10)
        self.assertEqual(values, sorted(values))
        self.assertEqual(values[-1], 1.0)
        self.assertEqual({d for _, d in progress}, {"x"})

    def test_many(self):
        """A list of paths: one run (asd_detect_many), one output, a dict per image."""
        scenes = []
        for name in ("a", "b"):
            scenes.append(os.path.join(self.tmp, name + ".tif"))
            shutil.copyfile(SCENE, scenes[-1])
        ep = LocalEndpoint()
        try:
            out = os.path.join(self.tmp, "many.gpkg")
            result = asyncdetect.Detect(out, scenes, options=self.options())
        finally:
            ep.stop()
        self.assertEqual(result.status, asyncdetect.OK)
        self.assertEqual(result.images, 2)
        self.assertEqual([im["source"] for im in result.image_list], scenes)
        self.assertEqual([im["features_kept"] for im in result.image_list], [GROUND_TRUTH, GROUND_TRUTH])
        self.assertEqual(result.tiles_succeeded, 80)
        self.assertEqual(feature_count(out), 2 * GROUND_TRUTH)
        self.assertIn("Image 2/2 " + scenes[1], result.text)

    def test_dataset(self):
        # A dataset that exists only in this process: no other process could open it.
        src = gdal.GetDriverByName("MEM").CreateCopy("", gdal.Open(SCENE))
        self.assertEqual(src.GetDescription(), "")
        ep = LocalEndpoint()
        try:
            out = os.path.join(self.tmp, "mem.gpkg")
            result = asyncdetect.Detect(out, src, options=" ".join(self.options()))
        finally:
            ep.stop()
        self.assertEqual(result.status, asyncdetect.OK)
        self.assertEqual(result.features_kept, GROUND_TRUTH)
        self.assertEqual(feature_count(out), GROUND_TRUTH)

    def test_errors(self):
        ep = LocalEndpoint()
        try:
            with self.assertRaises(asyncdetect.Error) as cm:
                asyncdetect.Detect(os.path.join(self.tmp, "bad.gpkg"), SCENE, options=self.options("no-such"))
            self.assertIn("no-such", str(cm.exception))
            self.assertIn("not found", str(cm.exception))
            self.assertNotIn("\n", str(cm.exception))
            self.assertFalse(cm.exception.usage_error)
        finally:
            ep.stop()
        with self.assertRaises(asyncdetect.Error) as cm:
            asyncdetect.Detect(os.path.join(self.tmp, "x.gpkg"), SCENE, options=["-no-such-option"])
        self.assertTrue(cm.exception.usage_error)
        self.assertIn("-no-such-option", str(cm.exception))
        with self.assertRaises(asyncdetect.Error) as cm:
            asyncdetect.Detect(os.path.join(self.tmp, "x.gpkg"), SCENE, options=["-quicklook-width", "5"])
        self.assertIn("-quicklook-width", str(cm.exception))
        with self.assertRaises(asyncdetect.Error) as cm:
            asyncdetect.Detect(os.path.join(self.tmp, "x.gpkg"), os.path.join(self.tmp, "missing.tif"),
                               options=self.options())
        self.assertIn("missing.tif", str(cm.exception))
        with self.assertRaises(TypeError):
            asyncdetect.Detect(os.path.join(self.tmp, "x.gpkg"), 42, options=self.options())
        self.assertIn("-endpoint", asyncdetect.usage())

    def test_cancel_resume(self):
        ep = LocalEndpoint("slow", latency_ms=150, instances=1, concurrency=1)
        progress = []

        def stop_at_10_percent(complete, message, data):
            progress.append(complete)
            return complete < 0.1
        try:
            out = os.path.join(self.tmp, "cancel.gpkg")
            # At most 4 tiles at the endpoint: most tiles are never sent.
            result = asyncdetect.Detect(out, SCENE, options=self.options("slow", "-max-concurrent-jobs", "4"),
                                        callback=stop_at_10_percent)
            self.assertEqual(result.status, asyncdetect.INTERRUPTED)
            # After the stop the bar measures the tiles in flight: it reaches the end when they are
            # done, although most tiles never ran.
            self.assertEqual(progress, sorted(progress))
            self.assertEqual(progress[-1], 1.0)
            self.assertGreater(result.tiles_not_run, 20)
            self.assertTrue(result.interrupted)
            self.assertGreater(result.tiles_not_run, 0)
            done = result.tiles_succeeded
            self.assertGreater(done, 0)
            result = asyncdetect.Detect(out, SCENE, options=self.options("slow", "-resume"))
        finally:
            ep.stop()
        self.assertEqual(result.status, asyncdetect.OK)
        self.assertEqual(result.tiles_resumed, done)
        self.assertEqual(result.tiles_succeeded, 40)
        self.assertEqual(feature_count(out), GROUND_TRUTH)

    def test_quicklook(self):
        """-quicklook through the options: the picture's size, and each detection's class colour on its
        outline (the colours of the output's map style: classes sorted, cyan then yellow)."""
        ep = LocalEndpoint()
        try:
            out, png = os.path.join(self.tmp, "ql.gpkg"), os.path.join(self.tmp, "ql.png")
            result = asyncdetect.Detect(out, SCENE, options=self.options() + ["-quicklook", png,
                                                                            "-quicklook-width", "750"])
        finally:
            ep.stop()
        self.assertEqual(result.status, asyncdetect.OK)
        pic = gdal.Open(png)
        self.assertEqual((pic.RasterXSize, pic.RasterYSize, pic.RasterCount), (750, 500, 3))
        rgb = [pic.GetRasterBand(b).ReadAsArray() for b in (1, 2, 3)]
        colours = {"building": (0, 229, 255), "vehicle": (255, 214, 0)}
        scale = 750 / 3000.0
        ds = ogr.Open(out)  # kept: a layer dies with its dataset
        layer = ds.GetLayerByName("detections")
        checked = 0
        for f in layer:
            shape = ogr.CreateGeometryFromWkt(f["image_geometry"])  # kept: its ring dies with it
            x, y = shape.GetGeometryRef(0).GetPoint_2D(0)
            c, r = int(x * scale), int(y * scale)
            want = colours[f["class"]]
            found = any(all(abs(int(rgb[k][rr][cc]) - want[k]) < 8 for k in range(3))
                        for rr in range(max(r - 2, 0), min(r + 3, 500)) for cc in range(max(c - 2, 0), min(c + 3, 750)))
            self.assertTrue(found, (f["class"], x, y))
            checked += 1
        self.assertEqual(checked, GROUND_TRUTH)

    def test_pipeline(self):
        """The README's pipeline, as written (the endpoint and bucket names substituted)."""
        with open(os.path.join(SOURCE_DIR, "python", "README.md"), encoding="utf-8") as f:
            readme = f.read()
        code = re.search(r"<!-- pipeline -->\s*```python\n(.*?)```", readme, re.S).group(1)
        self.assertLessEqual(len(code.strip().splitlines()), 12, code)
        code = code.replace("scene.tif", SCENE).replace("ship-detector", "py").replace("my-bucket", "py-input")
        # The example keeps the utility's polling schedule; the local endpoint answers at once.
        os.environ.update(ASYNC_SM_POLLING_INTERVAL="0.05", ASYNC_SM_MAX_POLLING_INTERVAL="0.5")
        ep = LocalEndpoint()
        cwd = os.getcwd()
        os.chdir(self.tmp)
        try:
            scope = {}
            exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 (the documented example)
        finally:
            os.chdir(cwd)
            ep.stop()
            for var in ("ASYNC_SM_POLLING_INTERVAL", "ASYNC_SM_MAX_POLLING_INTERVAL"):
                os.environ.pop(var)
        self.assertEqual(scope["result"].status, asyncdetect.OK)
        self.assertGreater(scope["result"].features_kept, 0)
        with open(os.path.join(self.tmp, "ships.geojson"), encoding="utf-8") as f:
            self.assertEqual(len(json.load(f)["features"]), scope["result"].features_kept)


if __name__ == "__main__":
    unittest.main(verbosity=2)
