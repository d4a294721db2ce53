#!/usr/bin/python3
"""
End-to-end tests of the QGIS Processing algorithm (apps/qgis/) run headless
through QGIS's own Processing framework, against the real local endpoint.

Each test case is one CTest test (e2e.qgis.<case>, see autotest/CMakeLists.txt):
  detect          processing.run on data/scene_utm.tif through an AWS *profile*
                  (credentials in a temporary shared-credentials file, never a
                  parameter): feature count equal to the ground truth's, CRS,
                  fields, the tile-status layer, progress streamed to the feedback,
                  layers to load, no secret in anything logged;
  dialog          the Toolbox dialog filled in and run as a background task, the
                  layers loaded into the project by Processing's post-processing;
  bad_endpoint    an unknown endpoint name: QgsProcessingException carrying the
                  utility's one-line error, no output layer loaded;
  cancel_resume   feedback.cancel() mid-run on a slow endpoint: exception saying
                  cancelled/resume, the utility gone (no child process, no
                  zombie), then a resumed run completes from the journal with
                  the ground truth's count and tiles reused;
  cancel_completed  Cancel once the endpoint has every tile: the run completes,
                  is reported complete with its results, and its layers are
                  loaded (by the algorithm: Processing loads nothing after a
                  cancel), styled, tiles below detections;
  cancel_dialog   the same through the algorithm's dialog and its Cancel button:
                  the task is cancelled, yet the log says "Execution completed",
                  never a red "Execution failed", and the layers are loaded;
  map             a partial run loaded by Processing's own post-processing, then
                  rendered by QGIS's map renderer: layer order, styles, every
                  detection's outline in its class colour, failed tiles tinted
                  red, the raster unchanged inside succeeded tiles;
  partial         injected model errors: exit status 2 is a warning, not a failure;
                  output, failed tiles with reasons, both layers loaded; resume
                  on a healthy endpoint retries only the failed tiles;
  options         extent in EPSG:4326 on the 11-bit 4-band scene with bands 1-3
                  and a rescaling range, output in UTM as GeoJSON: the options
                  reach the utility and the result lies in the window and
                  matches the ground truth there; merge options on a dry run;
  user_script     the algorithm installed as a Processing user script (a copy in
                  the scripts folder) and run by qgis_process (FlatGeobuf output);
  plugin          apps/qgis/ installed as a plugin, enabled and run by qgis_process,
                  the binary found through the Processing setting only, output
                  to a named table of an existing GeoPackage (its other layers stay);
  guards          no utility run needed: binary not found, credentials in the extra
                  options refused, an output path under a file, one-sentence
                  errors, GUI wording, redaction of the logged command line,
                  the GDALTermProgress parser.

Environment (set by CTest): ASD_APP_BIN, ASD_ENDPOINT_BIN, ASD_SOURCE_DIR.
Needs Debian's python3 with python3-qgis (scripts/setup.sh installs it).
"""

import ctypes
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

SOURCE_DIR = os.environ.get("ASD_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
APP_BIN = os.environ.get("ASD_APP_BIN", os.path.join(SOURCE_DIR, "build", "gdal_asyncdetect"))
ENDPOINT_BIN = os.environ.get("ASD_ENDPOINT_BIN", os.path.join(SOURCE_DIR, "build", "asyncdetect_endpoint"))
SCENE = os.path.join(SOURCE_DIR, "data", "scene_utm.tif")
GROUND_TRUTH = os.path.join(SOURCE_DIR, "data", "ground_truth.geojson")
QGIS_DIR = os.path.join(SOURCE_DIR, "apps", "qgis")

ACCESS_KEY = "ASDLOCALACCESSKEY"
SECRET_KEY = "asdlocal-secret-not-for-aws"
PROFILE = "asd-qgis-test"
ALG_ID = "asyncdetect:gdal_asyncdetect"

os.environ["QT_QPA_PLATFORM"] = "offscreen"
# QGIS computes band statistics when it loads a raster layer, and GDAL would
# keep them in a .aux.xml beside the repository's sample data: later tests
# that compare gdalinfo output (conformance /vsis3/) would then see them.
os.environ["GDAL_PAM_ENABLED"] = "NO"
sys.path.insert(0, QGIS_DIR)
sys.path.append("/usr/share/qgis/python/plugins")
try:
    from qgis.core import (QgsApplication, QgsCoordinateReferenceSystem, QgsCoordinateTransform,
                           QgsGeometry, QgsProcessingContext, QgsProcessingException, QgsRasterLayer,
                           QgsRectangle,
                           QgsProcessingFeedback, QgsProcessingOutputLayerDefinition, QgsProcessingUtils, QgsProject,
                           QgsSettings, QgsVectorLayer)
except ImportError as e:
    sys.stderr.write("test_qgis_processing: QGIS's Python bindings are missing ({}); "
                     "scripts/setup.sh installs python3-qgis\n".format(e))
    sys.exit(1)

import gdal_asyncdetect_algorithm as asd_alg  # noqa: E402 (after sys.path)
from gdal_asyncdetect_provider import GdalAsyncDetectProvider  # noqa: E402

QGIS_APP = None
PROVIDER = None


def _pdeathsig():
    # The endpoint dies with the test, even when CTest kills the test on a timeout.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LocalEndpoint:
    """The real asyncdetect_endpoint on an ephemeral loopback port (like autotest/support)."""

    def __init__(self, *endpoint_specs, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="asd-qgis-endpoint-")
        args = [ENDPOINT_BIN, "-port", "0", "-data-dir", self.dir, "-bucket", "qgis-input"] + list(extra_args)
        for spec in endpoint_specs:
            args += ["-endpoint", spec]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     preexec_fn=_pdeathsig)
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError("the local endpoint did not print its URL (got '{}')".format(line))
        self.url = line

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def endpoint_spec(name, instances=2, concurrency=4, latency_ms=0):
    return ("{},model=blobs,output=s3://qgis-input/results,failure=s3://qgis-input/failures,"
            "instances={},concurrency={},latency_ms={}").format(name, instances, concurrency, latency_ms)


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps everything the algorithm reports; optionally cancels at a progress."""

    def __init__(self, cancel_at=None):
        super().__init__()
        self.log = []
        self.errors = []
        self.progress = []
        self.cancel_at = cancel_at
        self.progressChanged.connect(self._on_progress)

    def _on_progress(self, value):
        self.progress.append(value)
        if self.cancel_at is not None and value >= self.cancel_at and not self.isCanceled():
            self.cancel()

    def pushInfo(self, info):  # noqa: N802
        self.log.append(info)
        super().pushInfo(info)

    def pushCommandInfo(self, info):  # noqa: N802
        self.log.append(info)
        super().pushCommandInfo(info)

    def pushConsoleInfo(self, info):  # noqa: N802
        self.log.append(info)
        super().pushConsoleInfo(info)

    def pushDebugInfo(self, info):  # noqa: N802
        self.log.append(info)
        super().pushDebugInfo(info)

    def pushWarning(self, warning):  # noqa: N802
        self.log.append(warning)
        super().pushWarning(warning)

    def reportError(self, error, fatalError=False):  # noqa: N802
        self.log.append(error)
        self.errors.append(error)
        super().reportError(error, fatalError)

    def text(self):
        return "\n".join(self.log)


def children_named(name):
    """Processes (zombies included) whose parent is this test and whose name is `name`."""
    found = []
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/{}/stat".format(pid)) as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == me and comm == name[:15]:
            found.append((int(pid), fields[0]))
    return found


def ogr_json_to_wkt(geometry):
    """WKT of a GeoJSON Polygon or MultiPolygon (the ground truth's footprints)."""
    def ring(r):
        return "(" + ", ".join("{} {}".format(x, y) for x, y in (p[:2] for p in r)) + ")"

    def poly(rings):
        return "(" + ", ".join(ring(r) for r in rings) + ")"
    if geometry["type"] == "Polygon":
        return "POLYGON " + poly(geometry["coordinates"])
    return "MULTIPOLYGON (" + ", ".join(poly(p) for p in geometry["coordinates"]) + ")"


def ground_truth_count():
    with open(GROUND_TRUTH, encoding="utf-8") as f:
        return len(json.load(f)["features"])


class QgisProcessingTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="asd-qgis-test-")
        # Credentials through a profile of a private shared-credentials file:
        # what a QGIS user has in ~/.aws, and nothing in the environment.
        creds = os.path.join(cls.tmp, "credentials")
        with open(creds, "w") as f:
            f.write("[{}]\naws_access_key_id = {}\naws_secret_access_key = {}\n".format(
                PROFILE, ACCESS_KEY, SECRET_KEY))
        config = os.path.join(cls.tmp, "config")
        open(config, "w").close()
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = creds
        os.environ["AWS_CONFIG_FILE"] = config
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                    "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"):
            os.environ.pop(var, None)
        os.environ[asd_alg.ENV_BINARY] = APP_BIN
        QgsSettings().remove(asd_alg.SETTINGS_KEY)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def params(self, url, endpoint, output, **extra):
        p = {
            "INPUT": SCENE,
            "ENDPOINT": endpoint,
            "INPUT_BUCKET": "qgis-input",
            "AWS_PROFILE": PROFILE,
            "AWS_REGION": "us-east-1",
            "ENDPOINT_URL": url,
            "TILE_SIZE": 512,
            "OVERLAP": 128,
            "POLLING_INTERVAL": 0.1,
            "MAX_POLLING_INTERVAL": 0.5,
            "OUTPUT": QgsProcessingOutputLayerDefinition(output, QgsProject.instance()),
        }
        p.update(extra)
        return p

    def run_alg(self, params, feedback):
        import processing
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        results = processing.run(ALG_ID, params, feedback=feedback, context=context)
        return results, context

    # ------------------------------------------------------------------ cases

    def test_detect(self):
        ep = LocalEndpoint(endpoint_spec("qgis-blobs"))
        try:
            out = os.path.join(self.tmp, "detect", "ships.gpkg")
            metrics = os.path.join(self.tmp, "detect", "metrics.json")
            # A check-only run first: plans, checks credentials and buckets, writes and loads nothing.
            dry_fb = RecordingFeedback()
            dry, dry_context = self.run_alg(self.params(ep.url, "qgis-blobs", out, DRY_RUN=True), dry_fb)
            self.assertEqual(dry["EXIT_STATUS"], 0)
            self.assertIsNone(dry["OUTPUT"])
            self.assertIn("Dry run: 40 tiles planned", dry_fb.text())
            self.assertFalse(os.path.exists(out))
            self.assertEqual(dry_context.layersToLoadOnCompletion(), {})

            fb = RecordingFeedback()
            results, context = self.run_alg(self.params(ep.url, "qgis-blobs", out, METRICS=metrics), fb)
        finally:
            ep.stop()

        expected = ground_truth_count()
        self.assertEqual(expected, 91)
        self.assertEqual(results["OUTPUT"], out + "|layername=detections")
        det = QgsVectorLayer(results["OUTPUT"], "det", "ogr")
        self.assertTrue(det.isValid(), results["OUTPUT"])
        self.assertEqual(det.featureCount(), expected)
        self.assertEqual(det.crs().authid(), "EPSG:32633")  # the input's CRS by default
        names = det.fields().names()
        for field in ("class", "score"):
            self.assertIn(field, names)
        classes = {f["class"] for f in det.getFeatures()}
        self.assertEqual(classes, {"building", "vehicle"})
        # The layer lies on the scene (UTM 33N).
        ext = det.extent()
        self.assertTrue(QgsRasterLayer(SCENE, "scene", "gdal").extent().contains(ext), ext.toString())

        tiles = QgsVectorLayer(results["TILES"], "tiles", "ogr")
        self.assertTrue(tiles.isValid(), results["TILES"])
        statuses = [f["status"] for f in tiles.getFeatures()]
        self.assertEqual(len(statuses), 40)  # 3000 x 2000 at 512/128
        self.assertEqual(set(statuses), {"succeeded"})

        self.assertEqual(results["EXIT_STATUS"], 0)
        self.assertEqual(results["TILES_SUCCEEDED"], 40)
        self.assertEqual(results["TILES_FAILED"], 0)
        self.assertEqual(results["FEATURES"], expected)
        self.assertEqual(results["METRICS"], metrics)
        with open(metrics, encoding="utf-8") as f:
            self.assertEqual(json.load(f)["status"], "ok")

        # Progress streamed from GDALTermProgress: increasing, many steps, to 100.
        self.assertGreaterEqual(len(fb.progress), 10, fb.progress)
        self.assertEqual(fb.progress, sorted(fb.progress))
        self.assertEqual(fb.progress[-1], 100.0)
        # The summary reached the log; secrets did not.
        self.assertIn("91 kept after merging", fb.text())
        self.assertIn("-profile " + PROFILE, fb.text())
        self.assertNotIn(SECRET_KEY, fb.text())
        self.assertNotIn(ACCESS_KEY, fb.text())

        # Processing loads the detections layer and the tile-status layer, not the file's first layer.
        to_load = context.layersToLoadOnCompletion()
        self.assertEqual(set(to_load), {out + "|layername=detections", out + "|layername=tiles"})
        counts, renderers = {}, {}
        for uri, details in to_load.items():
            # What the Processing GUI does with them at the end.
            layer = QgsProcessingUtils.mapLayerFromString(uri, context, True, details.layerTypeHint)
            self.assertIsNotNone(layer, uri)
            counts[uri.rsplit("=", 1)[1]] = layer.featureCount()
            self.assertIsNotNone(details.postProcessor(), uri)
            details.postProcessor().postProcessLayer(layer, context, fb)
            renderers[uri.rsplit("=", 1)[1]] = (layer.renderer().type(), layer.renderer().classAttribute())
        self.assertEqual(counts, {"detections": expected, "tiles": 40})
        # The styles the utility wrote into the GeoPackage, applied by the algorithm's post-processor.
        self.assertEqual(renderers, {"detections": ("categorizedSymbol", "class"),
                                     "tiles": ("categorizedSymbol", "status")})

    def test_dialog(self):
        """What a QGIS Desktop user does: the algorithm's dialog, filled in and run (a background
        task), then Processing's own post-processing loads the layers into the project."""
        from processing.gui.AlgorithmDialog import AlgorithmDialog
        scene = QgsRasterLayer(SCENE, "scene", "gdal")
        QgsProject.instance().addMapLayer(scene)
        alg = QgsApplication.processingRegistry().createAlgorithmById(ALG_ID)
        dialog = AlgorithmDialog(alg)
        panel = dialog.mainWidget()
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        ep = LocalEndpoint(endpoint_spec("qgis-blobs"))
        try:
            for name, value in (("INPUT", scene.id()), ("ENDPOINT", "qgis-blobs"), ("INPUT_BUCKET", "qgis-input"),
                                ("AWS_PROFILE", PROFILE), ("AWS_REGION", "us-east-1"), ("ENDPOINT_URL", ep.url),
                                ("POLLING_INTERVAL", 0.1), ("MAX_POLLING_INTERVAL", 0.5)):
                panel.wrappers[name].setParameterValue(value, context)
            # The dialog's defaults are the utility's.
            values = panel.createProcessingParameters()
            for name, value in (("TILE_SIZE", 512), ("OVERLAP", 128), ("MERGE", 0), ("MERGE_THRESHOLD", 0.5),
                                ("RESUME", False), ("LOAD_TILES", True), ("OUTPUT", "TEMPORARY_OUTPUT")):
                got = values[name]
                got = got.sink.staticValue() if hasattr(got, "sink") else got
                self.assertEqual(got, value, name)
            # A Help button, opening the README installed beside the algorithm.
            from qgis.PyQt.QtWidgets import QDialogButtonBox
            help_button = dialog.buttonBox().button(QDialogButtonBox.Help)
            self.assertTrue(help_button is not None and help_button.isEnabled())
            self.assertTrue(alg.helpUrl().endswith("/README.md"), alg.helpUrl())
            dialog.runAlgorithm()
            deadline = time.monotonic() + 300
            vectors = []
            while time.monotonic() < deadline and len(vectors) < 2:
                QgsApplication.processEvents()
                time.sleep(0.05)
                vectors = [lyr for lyr in QgsProject.instance().mapLayers().values()
                           if isinstance(lyr, QgsVectorLayer)]
        finally:
            ep.stop()
        from qgis.PyQt.QtWidgets import QTextEdit
        log = dialog.findChild(QTextEdit, "txtLog").toPlainText()
        by_name = {lyr.name(): lyr for lyr in vectors}
        self.assertEqual(set(by_name), {"Detections", "Detections tiles"}, log[-2000:])
        self.assertEqual(by_name["Detections"].featureCount(), ground_truth_count())
        self.assertEqual(by_name["Detections"].crs().authid(), "EPSG:32633")
        self.assertEqual(by_name["Detections tiles"].featureCount(), 40)
        # Styled from the output, the tiles below the detections.
        self.assertEqual(by_name["Detections"].renderer().classAttribute(), "class")
        self.assertEqual(by_name["Detections tiles"].renderer().classAttribute(), "status")
        order = [lyr.name() for lyr in QgsProject.instance().layerTreeRoot().layerOrder()]
        self.assertLess(order.index("Detections"), order.index("Detections tiles"), order)
        for lyr in by_name.values():
            QgsProject.instance().removeMapLayer(lyr.id())
        QgsProject.instance().removeMapLayer(scene.id())
        self.assertIn("91 kept after merging", log)
        self.assertNotIn(SECRET_KEY, log)

    def test_bad_endpoint(self):
        ep = LocalEndpoint(endpoint_spec("qgis-blobs"))
        try:
            out = os.path.join(self.tmp, "bad", "out.gpkg")
            fb = RecordingFeedback()
            with self.assertRaises(QgsProcessingException) as cm:
                self.run_alg(self.params(ep.url, "no-such-endpoint", out), fb)
        finally:
            ep.stop()
        msg = str(cm.exception)
        self.assertIn("no-such-endpoint", msg)
        self.assertIn("not found", msg)
        # One sentence, once: no request id or HTTP details (they are in the log), no second copy.
        self.assertEqual("\n" in msg, False)
        self.assertTrue(msg.endswith("."), msg)
        self.assertLess(len(msg), 160, msg)
        self.assertNotIn("request id", msg)
        self.assertEqual(fb.errors, [], "an error line reported besides the exception")
        self.assertIn("Error: endpoint 'no-such-endpoint'", fb.text())  # the details stay in the log
        self.assertNotIn("check -endpoint", msg)  # the dialog's words, not the command line's
        self.assertEqual(children_named("gdal_asyncdetect"), [])

    def test_cancel_resume(self):
        # One instance, one request at a time, 150 ms per tile: 40 tiles take
        # seconds, so a cancel at 10 % lands mid-run.
        ep = LocalEndpoint(endpoint_spec("qgis-slow", instances=1, concurrency=1, latency_ms=150))
        try:
            out = os.path.join(self.tmp, "cancel", "out.gpkg")
            fb = RecordingFeedback(cancel_at=10.0)
            with self.assertRaises(QgsProcessingException) as cm:
                self.run_alg(self.params(ep.url, "qgis-slow", out, CANCEL_GRACE=0.5), fb)
            msg = str(cm.exception)
            self.assertIn("Cancelled", msg)
            self.assertIn("check Resume", msg)
            self.assertIn("of 40 tiles finished", msg)
            self.assertIn("The journal {} keeps".format(out), fb.text())  # inside the GeoPackage
            self.assertIn("Cancel: no new tile is sent", fb.text())
            self.assertIn("left for Resume", fb.text())
            self.assertNotIn("Ctrl-C", fb.text())
            self.assertNotIn("-resume", fb.text().split("Cancel:", 1)[1])  # GUI words after the cancel
            self.assertTrue(fb.isCanceled())
            self.assertLess(fb.progress[-1], 100.0)
            # The utility is gone and reaped: no child process, not even a zombie.
            self.assertEqual(children_named("gdal_asyncdetect"), [])
            self.assertTrue(os.path.exists(out))

            fb2 = RecordingFeedback()
            metrics = os.path.join(self.tmp, "cancel", "resume.json")
            results, _ = self.run_alg(self.params(ep.url, "qgis-slow", out, RESUME=True, METRICS=metrics), fb2)
        finally:
            ep.stop()
        self.assertIn("-resume", fb2.text())
        with open(metrics, encoding="utf-8") as f:
            tiles = json.load(f)["tiles"]
        # The cancelled run finished some tiles and left others: the resume
        # reused the first from the journal and ran only the rest.
        self.assertGreater(tiles["resumed"], 0, tiles)
        self.assertLess(tiles["resumed"], 40, tiles)
        self.assertEqual(tiles["succeeded"], 40, tiles)
        self.assertEqual(results["EXIT_STATUS"], 0)
        self.assertEqual(results["TILES_FAILED"], 0)
        det = QgsVectorLayer(results["OUTPUT"], "det", "ogr")
        self.assertEqual(det.featureCount(), ground_truth_count())

    def test_cancel_completed(self):
        """Cancel when every tile is already at the endpoint: the tiles in flight finish, the run is
        complete, and it is reported and loaded as complete, not as a failure."""
        # 12 tiles (1024/128), 16 slots, 3 s per tile; Cancel comes once the endpoint has received
        # all 12 invocations (its stats say so), whatever the machine's load.
        ep = LocalEndpoint(endpoint_spec("qgis-late", instances=2, concurrency=8, latency_ms=3000))
        project = QgsProject.instance()
        before = set(project.mapLayers())
        fb = RecordingFeedback()
        stop = threading.Event()

        def cancel_when_all_sent():
            while not stop.wait(0.05):
                try:
                    with urllib.request.urlopen(ep.url + "/_asd/stats", timeout=5) as r:
                        stats = json.load(r)
                except OSError:
                    continue
                if stats["requests"].get("InvokeEndpointAsync", {}).get("count", 0) >= 12:
                    fb.cancel()  # thread-safe: QgsFeedback's flag
                    return
        watcher = threading.Thread(target=cancel_when_all_sent, daemon=True)
        watcher.start()
        try:
            out = os.path.join(self.tmp, "cancel_done", "out.gpkg")
            results, _ = self.run_alg(self.params(ep.url, "qgis-late", out, TILE_SIZE=1024, CANCEL_GRACE=120), fb)
        finally:
            stop.set()
            watcher.join()
            ep.stop()
        self.assertTrue(fb.isCanceled())
        self.assertIn("Cancel: no new tile is sent", fb.text())
        self.assertIn("the run is complete", fb.text())
        self.assertEqual(results["EXIT_STATUS"], 0)
        self.assertEqual(results["TILES_SUCCEEDED"], 12)
        self.assertEqual(results["FEATURES"], ground_truth_count())
        self.assertEqual(fb.progress[-1], 100.0)
        # Processing loads nothing for a cancelled algorithm: the algorithm did, on the main thread.
        deadline = time.monotonic() + 30
        added = []
        while time.monotonic() < deadline and len(added) < 2:
            QgsApplication.processEvents()
            added = [lyr for lid, lyr in project.mapLayers().items() if lid not in before]
        self.assertEqual(sorted(lyr.featureCount() for lyr in added), [12, ground_truth_count()])
        order = [lyr.id() for lyr in project.layerTreeRoot().layerOrder() if lyr.id() not in before]
        by_count = {lyr.featureCount(): lyr for lyr in added}
        self.assertEqual(order, [by_count[ground_truth_count()].id(), by_count[12].id()])
        self.assertEqual(by_count[12].renderer().classAttribute(), "status")
        for lyr in added:
            project.removeMapLayer(lyr.id())

    def test_cancel_dialog(self):
        """The same through the algorithm's dialog, as a QGIS Desktop user presses Cancel: the task is
        cancelled, yet the run completed, so the dialog reports it as completed (no red "Execution
        failed") and the layers are in the project."""
        scene = QgsRasterLayer(SCENE, "scene", "gdal")
        project = QgsProject.instance()
        project.addMapLayer(scene)
        before = set(project.mapLayers())
        alg = QgsApplication.processingRegistry().createAlgorithmById(ALG_ID)
        dialog = alg.createCustomParametersWidget(None)
        self.assertIsNotNone(dialog)
        panel = dialog.mainWidget()
        context = QgsProcessingContext()
        context.setProject(project)
        ep = LocalEndpoint(endpoint_spec("qgis-late", instances=2, concurrency=8, latency_ms=3000))
        from qgis.PyQt.QtWidgets import QTextEdit
        log = ""
        try:
            for name, value in (("INPUT", scene.id()), ("ENDPOINT", "qgis-late"), ("INPUT_BUCKET", "qgis-input"),
                                ("AWS_PROFILE", PROFILE), ("AWS_REGION", "us-east-1"), ("ENDPOINT_URL", ep.url),
                                ("POLLING_INTERVAL", 0.1), ("MAX_POLLING_INTERVAL", 0.5), ("TILE_SIZE", 1024),
                                ("CANCEL_GRACE", 120)):
                panel.wrappers[name].setParameterValue(value, context)
            dialog.runAlgorithm()
            cancelled = False
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                QgsApplication.processEvents()
                time.sleep(0.05)
                if not cancelled:
                    try:
                        with urllib.request.urlopen(ep.url + "/_asd/stats", timeout=5) as r:
                            stats = json.load(r)
                    except OSError:
                        continue
                    if stats["requests"].get("InvokeEndpointAsync", {}).get("count", 0) >= 12:
                        dialog.cancelButton().click()  # on the main thread, as a user's click
                        cancelled = True
                log = dialog.findChild(QTextEdit, "txtLog").toPlainText()
                if "Execution completed" in log or "Execution failed" in log:
                    break
        finally:
            ep.stop()
        self.assertTrue(cancelled, log[-2000:])
        self.assertIn("Cancel: no new tile is sent", log)
        self.assertIn("the run is complete", log)
        self.assertNotIn("Execution failed", log)
        self.assertIn("Execution completed", log)
        deadline = time.monotonic() + 30
        added = []
        while time.monotonic() < deadline and len(added) < 2:
            QgsApplication.processEvents()
            added = [lyr for lid, lyr in project.mapLayers().items() if lid not in before]
        self.assertEqual(sorted(lyr.featureCount() for lyr in added), [12, ground_truth_count()])
        for lyr in added:
            project.removeMapLayer(lyr.id())
        project.removeMapLayer(scene.id())

    def test_map(self):
        """The map after a partial run, rendered by QGIS: the raster visible through the tiles, the
        failed tiles shaded red, the detections outlined in their class colours on top."""
        from processing.gui.Postprocessing import handleAlgorithmResults
        from qgis.core import QgsMapRendererParallelJob, QgsMapSettings
        from qgis.PyQt.QtCore import QSize
        from qgis.PyQt.QtGui import QColor
        project = QgsProject.instance()
        scene = QgsRasterLayer(SCENE, "scene", "gdal")
        project.addMapLayer(scene)
        out = os.path.join(self.tmp, "map", "out.gpkg")
        ep = LocalEndpoint(endpoint_spec("qgis-blobs"), extra_args=["-faults", "model_error=0.2,seed=3"])
        try:
            alg = QgsApplication.processingRegistry().createAlgorithmById(ALG_ID)
            context = QgsProcessingContext()
            context.setProject(project)
            fb = RecordingFeedback()
            params = self.params(ep.url, "qgis-blobs", out)
            results, ok = alg.run(params, context, fb)
            self.assertTrue(ok, fb.text()[-2000:])
            # What the dialog does at the end: Processing's own loading, with the algorithm's post-processors.
            self.assertTrue(handleAlgorithmResults(alg, context, fb, True, params))
        finally:
            ep.stop()
        self.assertEqual(results["EXIT_STATUS"], 2)
        order = [lyr.name() for lyr in project.layerTreeRoot().layerOrder()]
        self.assertEqual(order, ["Detections", "Detections tiles", "scene"])
        layers = project.layerTreeRoot().layerOrder()
        det, tiles = layers[0], layers[1]
        self.assertEqual((det.renderer().type(), det.renderer().classAttribute()), ("categorizedSymbol", "class"))
        self.assertEqual(tiles.renderer().classAttribute(), "status")

        def render(which):
            settings = QgsMapSettings()
            settings.setLayers(which)
            settings.setDestinationCrs(scene.crs())
            settings.setExtent(scene.extent())
            settings.setOutputSize(QSize(1500, 1000))
            settings.setBackgroundColor(QColor(0, 0, 0))
            job = QgsMapRendererParallelJob(settings)
            job.start()
            job.waitForFinished()
            return job.renderedImage(), settings.mapToPixel()

        image, m2p = render(layers)
        raster_only, _ = render([scene])
        shot = os.environ.get("ASD_QGIS_SCREENSHOT") or os.path.join(self.tmp, "map", "map.png")
        image.save(shot)

        def rgb(img, x, y):
            c = img.pixelColor(min(max(int(x), 0), img.width() - 1), min(max(int(y), 0), img.height() - 1))
            return c.red(), c.green(), c.blue()

        def near(a, b, tol=40):
            return all(abs(p - q) <= tol for p, q in zip(a, b))

        # Each class's colour (the utility's table: sorted classes, cyan then yellow) on its boxes' edges.
        colours = {"building": (0, 229, 255), "vehicle": (255, 214, 0)}
        checked = 0
        for f in det.getFeatures():
            corner = f.geometry().vertexAt(0)  # on the outline
            p = m2p.transform(corner.x(), corner.y())
            found = any(near(rgb(image, p.x() + dx, p.y() + dy), colours[f["class"]])
                        for dx in (-2, -1, 0, 1, 2) for dy in (-2, -1, 0, 1, 2))
            self.assertTrue(found, (f["class"], rgb(image, p.x(), p.y())))
            checked += 1
        self.assertGreater(checked, 10)

        # Failed tiles: the raster shows through a red tint; succeeded tiles leave it untouched.
        failed = succeeded = 0
        failed_boxes = [f.geometry().boundingBox() for f in tiles.getFeatures() if f["status"] == "failed"]
        for f in tiles.getFeatures():
            c = f.geometry().centroid().asPoint()
            p = m2p.transform(c.x(), c.y())
            before, after = rgb(raster_only, p.x(), p.y()), rgb(image, p.x(), p.y())
            covered = any(g.geometry().boundingBox().buffered(2).contains(c) for g in det.getFeatures()) or \
                any(b.contains(c) for b in failed_boxes)
            if f["status"] == "failed":
                # Redder than the raster there, whether the pixel is dark or bright.
                self.assertGreater((after[0] - after[1]) - (before[0] - before[1]), 25, (before, after))
                self.assertLess(after[1], before[1] + 1, (before, after))
                failed += 1
            elif not covered:
                self.assertTrue(near(before, after, 3), (f["status"], before, after))
                succeeded += 1
        self.assertGreater(failed, 0)
        self.assertGreater(succeeded, 0)
        for lyr in layers:
            project.removeMapLayer(lyr.id())

    def test_user_script(self):
        """The algorithm as a user script in the Processing scripts folder, run by qgis_process."""
        # Debian 12's /usr/bin/qgis_process wrapper passes --noversioncheck (from
        # /etc/default/qgis), which qgis_process.bin rejects; run the binary itself.
        qgis_process = shutil.which("qgis_process.bin") or shutil.which("qgis_process")
        self.assertIsNotNone(qgis_process, "qgis_process is missing (Debian package qgis; scripts/setup.sh)")
        config = os.path.join(self.tmp, "qgis-config")
        scripts = os.path.join(config, "profiles", "default", "processing", "scripts")
        os.makedirs(scripts)
        shutil.copy(os.path.join(QGIS_DIR, "gdal_asyncdetect_algorithm.py"), scripts)
        out = os.path.join(self.tmp, "script", "out.fgb")
        os.makedirs(os.path.dirname(out))
        ep = LocalEndpoint(endpoint_spec("qgis-blobs"))
        try:
            env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=config, QT_QPA_PLATFORM="offscreen")
            cmd = [qgis_process, "--json", "run", "script:gdal_asyncdetect", "--",
                   "INPUT=" + SCENE, "ENDPOINT=qgis-blobs", "INPUT_BUCKET=qgis-input", "AWS_PROFILE=" + PROFILE,
                   "AWS_REGION=us-east-1", "ENDPOINT_URL=" + ep.url, "POLLING_INTERVAL=0.1",
                   "MAX_POLLING_INTERVAL=0.5", "OUTPUT=" + out]
            proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=300, preexec_fn=_pdeathsig)
        finally:
            ep.stop()
        self.assertEqual(proc.returncode, 0, proc.stderr.decode(errors="replace")[-3000:])
        stdout = proc.stdout.decode()
        doc = json.loads(stdout[stdout.index("{"):])
        self.assertEqual(doc["results"]["EXIT_STATUS"], 0)
        self.assertEqual(doc["results"]["FEATURES"], ground_truth_count())
        det = QgsVectorLayer(doc["results"]["OUTPUT"], "det", "ogr")
        self.assertTrue(det.isValid(), doc["results"]["OUTPUT"])
        self.assertEqual(det.featureCount(), ground_truth_count())
        self.assertEqual(det.crs().authid(), "EPSG:32633")
        self.assertNotIn(SECRET_KEY, stdout + proc.stderr.decode(errors="replace"))

    def test_partial(self):
        """Some tiles fail (injected model errors): a warning, the output and both layers, then resume."""
        out = os.path.join(self.tmp, "partial", "out.gpkg")
        ep = LocalEndpoint(endpoint_spec("qgis-blobs"), extra_args=["-faults", "model_error=0.2,seed=3"])
        try:
            fb = RecordingFeedback()
            results, context = self.run_alg(self.params(ep.url, "qgis-blobs", out), fb)
        finally:
            ep.stop()
        self.assertEqual(results["EXIT_STATUS"], 2)
        failed = results["TILES_FAILED"]
        self.assertGreater(failed, 0)
        self.assertEqual(results["TILES_SUCCEEDED"] + failed, 40)
        self.assertIn("{} of 40 tiles failed".format(failed), fb.text())
        tiles = QgsVectorLayer(results["TILES"], "tiles", "ogr")
        reasons = [f["reason"] for f in tiles.getFeatures() if f["status"] == "failed"]
        self.assertEqual(len(reasons), failed)
        self.assertTrue(all(reasons), reasons)
        self.assertEqual(len(context.layersToLoadOnCompletion()), 2)
        self.assertLessEqual(QgsVectorLayer(results["OUTPUT"], "d", "ogr").featureCount(), ground_truth_count())

        # Resume against a healthy endpoint retries only the failed tiles.
        ep = LocalEndpoint(endpoint_spec("qgis-blobs"))
        try:
            fb = RecordingFeedback()
            results, _ = self.run_alg(self.params(ep.url, "qgis-blobs", out, RESUME=True), fb)
        finally:
            ep.stop()
        self.assertEqual(results["EXIT_STATUS"], 0)
        self.assertIn("({} from an earlier run)".format(40 - failed), fb.text())
        self.assertEqual(QgsVectorLayer(results["OUTPUT"], "d", "ogr").featureCount(), ground_truth_count())

    def test_options(self):
        """Extent in another CRS, bands + rescaling range on the 11-bit scene, merge options, output CRS, GeoJSON."""
        scene16 = os.path.join(SOURCE_DIR, "data", "scene_u16.tif")
        raster = QgsRasterLayer(scene16, "u16", "gdal")
        self.assertTrue(raster.isValid())
        full = raster.extent()
        west = QgsRectangle(full.xMinimum(), full.yMinimum(), full.center().x(), full.yMaximum())
        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        to_wgs84 = QgsCoordinateTransform(raster.crs(), wgs84, QgsProject.instance())
        west_ll = to_wgs84.transformBoundingBox(west)
        # What the algorithm turns the extent into (-projwin in the raster's CRS).
        window = QgsCoordinateTransform(wgs84, raster.crs(), QgsProject.instance()).transformBoundingBox(west_ll)

        out = os.path.join(self.tmp, "options", "west.geojson")
        ep = LocalEndpoint(endpoint_spec("qgis-blobs"))
        extent = "{},{},{},{} [EPSG:4326]".format(west_ll.xMinimum(), west_ll.xMaximum(),
                                                  west_ll.yMinimum(), west_ll.yMaximum())
        try:
            # The merge options, checked on a dry run: NMS with IoU keeps the
            # halves of boxes cut by tile edges, so its count is not comparable.
            fb = RecordingFeedback()
            self.run_alg(self.params(ep.url, "qgis-blobs", out, MERGE=1, MATCH_METRIC=1, MERGE_THRESHOLD=0.3,
                                     MIN_SCORE=0.2, CLASS_AGNOSTIC=True, DRY_RUN=True), fb)
            self.assertIn("-merge nms -match-metric iou -merge-threshold 0.3 -min-score 0.2 -class-agnostic",
                          fb.text())
            fb = RecordingFeedback()
            results, context = self.run_alg(self.params(
                ep.url, "qgis-blobs", out, INPUT=scene16, EXTENT=extent,
                BANDS=[1, 2, 3], SCALE=2, SCALE_RANGE="0,2047", T_SRS="EPSG:32633"), fb)
        finally:
            ep.stop()
        log = fb.text()
        for expected in ("-projwin ", "-b 1 -b 2 -b 3", "-scale 0.0 2047.0", "-t_srs EPSG:32633"):
            self.assertIn(expected, log)
        self.assertEqual(results["EXIT_STATUS"], 0)
        self.assertTrue(0 < results["TILES_SUCCEEDED"] < 40, results)
        # GeoJSON holds one layer: the tile-status layer is the sibling file, loaded too.
        self.assertEqual(results["OUTPUT"], out)
        self.assertEqual(results["TILES"], os.path.join(self.tmp, "options", "west_tiles.geojson"))
        self.assertEqual(set(context.layersToLoadOnCompletion()), {out, results["TILES"]})
        # Styled like a GeoPackage's layers: from the .qml files the utility wrote beside them.
        for uri, details in context.layersToLoadOnCompletion().items():
            layer = QgsProcessingUtils.mapLayerFromString(uri, context, True, details.layerTypeHint)
            details.postProcessor().postProcessLayer(layer, context, fb)
            self.assertEqual(layer.renderer().classAttribute(), "status" if uri == results["TILES"] else "class")
        det = QgsVectorLayer(out, "det", "ogr")
        self.assertTrue(det.isValid())
        self.assertEqual(det.crs().authid(), "EPSG:32633")
        n = det.featureCount()
        for f in det.getFeatures():
            c = f.geometry().centroid().asPoint()
            self.assertTrue(window.buffered(1.0).contains(c), c.toString())
        # Between the ground-truth objects inside the window and those touching it.
        to_utm = QgsCoordinateTransform(wgs84, raster.crs(), QgsProject.instance())
        inside = touching = 0
        with open(GROUND_TRUTH, encoding="utf-8") as f:
            for feat in json.load(f)["features"]:
                g = QgsGeometry.fromWkt(ogr_json_to_wkt(feat["geometry"]))
                g.transform(to_utm)
                inside += window.contains(g.boundingBox())
                touching += g.boundingBox().intersects(window)
        self.assertGreater(inside, 10)
        self.assertLess(touching, ground_truth_count())
        self.assertTrue(inside <= n <= touching, (inside, n, touching))

    def test_plugin(self):
        """apps/qgis/ installed as the gdal_asyncdetect plugin, enabled and run by qgis_process;
        the binary found through the Processing setting only; a GeoPackage table as output."""
        qgis_process = shutil.which("qgis_process.bin") or shutil.which("qgis_process")
        self.assertIsNotNone(qgis_process, "qgis_process is missing (Debian package qgis; scripts/setup.sh)")
        config = os.path.join(self.tmp, "qgis-plugin-config")
        profile = os.path.join(config, "profiles", "default")
        shutil.copytree(QGIS_DIR, os.path.join(profile, "python", "plugins", "gdal_asyncdetect"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        os.makedirs(os.path.join(profile, "QGIS"))
        with open(os.path.join(profile, "QGIS", "QGIS3.ini"), "w") as f:
            f.write("[Processing]\nConfiguration\\{}={}\n".format(asd_alg.SETTING_BINARY, APP_BIN))
        env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=config, QT_QPA_PLATFORM="offscreen")
        env.pop(asd_alg.ENV_BINARY)
        env["PATH"] = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep)
                                      if not os.path.exists(os.path.join(d, "gdal_asyncdetect")))
        enable = subprocess.run([qgis_process, "plugins", "enable", "gdal_asyncdetect"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(enable.returncode, 0, enable.stdout.decode(errors="replace"))
        out = os.path.join(self.tmp, "plugin", "run.gpkg")
        os.makedirs(os.path.dirname(out))
        # An existing GeoPackage with a layer of the user's and a stale "ships"
        # table: the run replaces "ships" and keeps the user's layer.
        for table in ("keepme", "ships"):
            subprocess.run(["ogr2ogr", "-f", "GPKG"] + (["-update"] if os.path.exists(out) else []) +
                           ["-nln", table, out, GROUND_TRUTH], check=True, stderr=subprocess.DEVNULL)
        ep = LocalEndpoint(endpoint_spec("qgis-blobs"))
        try:
            cmd = [qgis_process, "--json", "run", ALG_ID, "--",
                   "INPUT=" + SCENE, "ENDPOINT=qgis-blobs", "INPUT_BUCKET=qgis-input", "AWS_PROFILE=" + PROFILE,
                   "AWS_REGION=us-east-1", "ENDPOINT_URL=" + ep.url, "POLLING_INTERVAL=0.1",
                   "MAX_POLLING_INTERVAL=0.5", "OUTPUT=ogr:dbname='{}' table=\"ships\" (geom)".format(out)]
            proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=300, preexec_fn=_pdeathsig)
        finally:
            ep.stop()
        self.assertEqual(proc.returncode, 0, proc.stderr.decode(errors="replace")[-3000:])
        stdout = proc.stdout.decode()
        doc = json.loads(stdout[stdout.index("{"):])
        self.assertEqual(doc["results"]["OUTPUT"], out + "|layername=ships")
        self.assertEqual(doc["results"]["TILES"], out + "|layername=ships_tiles")
        det = QgsVectorLayer(doc["results"]["OUTPUT"], "det", "ogr")
        self.assertEqual(det.featureCount(), ground_truth_count())
        self.assertEqual(QgsVectorLayer(doc["results"]["TILES"], "t", "ogr").featureCount(), 40)
        self.assertIn("score", det.fields().names())
        self.assertNotIn("pixel_bbox", det.fields().names())  # the stale table's schema is gone
        self.assertEqual(QgsVectorLayer(out + "|layername=keepme", "k", "ogr").featureCount(),
                         ground_truth_count())

    def test_guards(self):
        out = os.path.join(self.tmp, "guards", "out.gpkg")
        # Credentials in the extra options are refused before anything runs.
        fb = RecordingFeedback()
        with self.assertRaises(QgsProcessingException) as cm:
            self.run_alg(self.params("http://127.0.0.1:9", "x", out,
                                     EXTRA_OPTIONS="--config AWS_SECRET_ACCESS_KEY abc"), fb)
        self.assertIn("Credentials are not accepted", str(cm.exception))
        self.assertNotIn("abc", fb.text())
        # Inconsistent values are refused before anything runs, with a message the dialog shows.
        for extra, words in (({"TILE_SIZE": 256, "OVERLAP": 256}, "overlap (256) must be smaller"),
                             ({"SCALE": 2}, "range with minimum < maximum")):
            with self.assertRaises(QgsProcessingException) as cm:
                self.run_alg(self.params("http://127.0.0.1:9", "x", out, **extra), RecordingFeedback())
            self.assertIn(words, str(cm.exception))
        # A binary that is not there: one clear message naming how to set it.
        os.environ[asd_alg.ENV_BINARY] = os.path.join(self.tmp, "no-such-binary")
        saved_path = os.environ.get("PATH", "")
        os.environ["PATH"] = self.tmp
        try:
            with self.assertRaises(QgsProcessingException) as cm:
                self.run_alg(self.params("http://127.0.0.1:9", "x", out), RecordingFeedback())
        finally:
            os.environ[asd_alg.ENV_BINARY] = APP_BIN
            os.environ["PATH"] = saved_path
        self.assertIn("gdal_asyncdetect not found", str(cm.exception))
        self.assertIn(asd_alg.ENV_BINARY, str(cm.exception))

        # Short labels; the explanations are the parameters' help; choices in words.
        alg = QgsApplication.processingRegistry().createAlgorithmById(ALG_ID)
        for param in alg.parameterDefinitions():
            self.assertLessEqual(len(param.description()), 40, param.description())
            self.assertTrue(param.help(), param.name())
            # No explanation in brackets; a unit is fine.
            self.assertNotIn("(", param.description().replace(" (s)", ""), param.description())
        merge = alg.parameterDefinition("MERGE").options()
        self.assertTrue(all(len(o.split()) > 2 for o in merge), merge)
        self.assertIn("Overlap / union of the boxes (IoU)", alg.parameterDefinition("MATCH_METRIC").options())

        # An output path under a file: one sentence, no traceback.
        blocker = os.path.join(self.tmp, "guards-file")
        open(blocker, "w").close()
        with self.assertRaises(QgsProcessingException) as cm:
            self.run_alg(self.params("http://127.0.0.1:9", "x", os.path.join(blocker, "sub", "out.gpkg")),
                         RecordingFeedback())
        self.assertIn("'{}' is a file, not a folder".format(blocker), str(cm.exception))

        # Error lines in one sentence: what failed, then why; no request details.
        line = ("endpoint 'nope': endpoint invocation failed: InvokeEndpointAsync on 'nope' for s3://b/k: "
                "POST http://127.0.0.1:1/endpoints/nope/async-invocations: Endpoint nope of account 0 not "
                "found. (after 1 attempt) (HTTP 400, ValidationError, request id b4d3)")
        self.assertEqual(asd_alg.one_sentence(line), "Endpoint 'nope': Endpoint nope of account 0 not found.")
        self.assertEqual(asd_alg.one_sentence("no credentials found"), "No credentials found.")
        self.assertEqual(asd_alg.gui_words("Interrupted: rerun the same command with -resume to finish."),
                         "Interrupted: check Resume and run again to finish.")

        # The logged command line never shows secret values.
        line = asd_alg.redact_command(["gdal_asyncdetect", "--config", "AWS_SESSION_TOKEN", "tok123",
                                       "--config", "GDAL_HTTP_USERPWD=u:pw", "-external-id", "ext42",
                                       "-endpoint", "e", "/vsicurl/https://user:pw@host/x.tif", "o.gpkg"])
        for secret in ("tok123", "ext42", "user:pw@"):
            self.assertNotIn(secret, line)
        self.assertIn("-endpoint e", line)

        # GDALTermProgress in arbitrary chunks, then the summary.
        p = asd_alg.TermProgressParser()
        seen = []
        for chunk in ["0", "..", ".1", "0...2", "0...30...40...50...60...70...80...90...1", "00 - do",
                      "ne.\nTiles: 40 planned\nFeatures: 1", "2 kept\n"]:
            lines = p.feed(chunk)
            seen.append(p.percent())
            if lines:
                seen.append(lines)
        self.assertEqual(seen[0], 0.0)
        self.assertEqual(p.percent(), 100.0)
        self.assertIn(["Tiles: 40 planned"], seen)
        self.assertEqual(p.feed(""), [])
        self.assertIn(["Features: 12 kept"], seen)
        # A run that stops early: the summary follows the last progress characters.
        p = asd_alg.TermProgressParser()
        self.assertEqual(p.feed("0...10...20Tiles: 40 planned\n"), ["Tiles: 40 planned"])
        self.assertEqual(p.percent(), 20.0)


def main():
    global QGIS_APP, PROVIDER
    # A private QGIS profile: tests running side by side (ctest -j) never
    # share settings files, and the user's own profile is never touched.
    profile_dir = tempfile.mkdtemp(prefix="asd-qgis-profile-")
    os.environ["QGIS_CUSTOM_CONFIG_PATH"] = profile_dir
    QgsApplication.setPrefixPath("/usr", True)
    QGIS_APP = QgsApplication([], True)  # with widgets (offscreen): the dialog test needs them
    QGIS_APP.initQgis()
    from processing.core.Processing import Processing
    Processing.initialize()
    PROVIDER = GdalAsyncDetectProvider()
    QgsApplication.processingRegistry().addProvider(PROVIDER)
    result = unittest.main(exit=False, verbosity=2).result
    ok = result.wasSuccessful() and result.testsRun > 0
    shutil.rmtree(profile_dir, ignore_errors=True)
    # Processing's temporary outputs (TEMPORARY_OUTPUT in the dialog test);
    # QGIS removes them at exit, which os._exit skips.
    from qgis.core import QgsProcessingUtils
    shutil.rmtree(QgsProcessingUtils.tempFolder(), ignore_errors=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # QGIS's exit path can crash in destructors of Python-owned objects; the
    # verdict is already decided, so leave without running them.
    os._exit(0 if ok else 1)


if __name__ == "__main__":
    main()
