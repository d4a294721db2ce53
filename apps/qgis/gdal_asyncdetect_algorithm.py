# -*- coding: utf-8 -*-
"""
gdal_asyncdetect_algorithm.py: the QGIS Processing algorithm "Detect objects
(SageMaker async endpoint)", which runs the gdal_asyncdetect utility.

Why a wrapper around the utility and not a binding of the library: the
utility is the tested, documented interface (options, exit status, one-line
errors, resumable journal), it runs outside QGIS's process so that a crash or
a long network wait never takes QGIS down, and SIGINT gives it the same
graceful stop a terminal user gets with Ctrl-C.  The algorithm therefore only
translates parameters into the utility's options, streams its output into the
Processing feedback and turns its exit status into a result or an exception.

What it reads from the utility:
  * stdout: GDALTermProgress ("0...10...20...", one character per 2.5 %,
    flushed as it goes), then the run summary; the progress characters are
    parsed into QgsProcessingFeedback.setProgress(), the summary is logged;
  * stderr: "gdal_asyncdetect: ERROR n: message" (one line each) and
    "gdal_asyncdetect: Warning n: message"; the last error becomes the
    QgsProcessingException text;
  * the -metrics JSON file, written at the end of every run that started,
    for the figures returned as outputs (tiles succeeded/failed, features).

Cancel: the first SIGINT makes the utility stop submitting and drain the
tiles in flight; after CANCEL_GRACE seconds a second SIGINT stops it at once
(the journal holds every committed state, so "Resume" loses nothing); a
process that still has not exited some seconds later is killed.  The child is
always reaped before the algorithm returns.

Secrets: credentials never are algorithm parameters (Processing keeps every
parameter value in its history and logs).  The utility finds them through the
standard AWS chain: an AWS profile (a parameter names it, the secret stays in
~/.aws), environment variables set before QGIS started, SSO, roles.  Extra
options that carry credentials are refused, and the command line logged is
redacted (--config values of secret-looking keys, -external-id, user:password
in URLs).

The file is self-contained so that it also works as a Processing user script
(copied into the "scripts" folder of the profile); gdal_asyncdetect_provider.py
and __init__.py make the same algorithm a plugin provider.
"""

import codecs
import json
import math
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsDataSourceUri,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRange,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsProcessingUtils,
    QgsProviderConnectionException,
    QgsProviderRegistry,
    QgsSettings,
    QgsVectorLayer,
)

# Where the binary comes from, in this order: the Processing setting (set in
# Settings > Options > Processing > Providers when the provider is installed,
# or by hand under this QgsSettings key), the environment variable, PATH.
SETTING_BINARY = "ASD_GDAL_ASYNCDETECT_PATH"
SETTINGS_KEY = "Processing/Configuration/" + SETTING_BINARY
ENV_BINARY = "GDAL_ASYNCDETECT_BIN"

# Exit status of the utility (asd_app.h, asd_detect_status).
EXIT_OK, EXIT_ERROR, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 2, 3

# Extra options that would put credentials in the Processing history.
_CREDENTIAL_WORDS = re.compile(
    r"AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|AWS_ACCESS_KEY_ID|AWS_SECURITY_TOKEN", re.I)
# --config keys whose values are masked in the logged command line.
_SECRET_KEY = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|ACCESS_KEY|_KEY$", re.I)
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)

MERGE_MODES = ["nmm", "nms", "soft-nms", "none"]
MATCH_METRICS = ["ios", "iou"]
TILE_FORMATS = ["PNG", "GTiff", "JPEG", "NITF"]


def find_binary():
    """Path of gdal_asyncdetect, or raises QgsProcessingException saying how to set it."""
    tried = []
    configured = QgsSettings().value(SETTINGS_KEY, "", type=str) or ""
    for origin, value in (("the Processing setting " + SETTING_BINARY, configured.strip()),
                          ("$" + ENV_BINARY, os.environ.get(ENV_BINARY, "").strip())):
        if not value:
            continue
        path = shutil.which(value) or value
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        tried.append("{} ('{}') is not an executable file".format(origin, value))
    path = shutil.which("gdal_asyncdetect")
    if path:
        return path
    tried.append("gdal_asyncdetect is not on PATH")
    raise QgsProcessingException(
        "gdal_asyncdetect not found: {}. Install it (cmake --install build) or set ${} or the "
        "Processing setting {} to its full path".format("; ".join(tried), ENV_BINARY, SETTING_BINARY))


def redact_command(args):
    """The command line as it can be logged: no secret values."""
    out = []
    mask_next = False
    for i, a in enumerate(args):
        if mask_next:
            out.append("***")
            mask_next = False
            continue
        prev = args[i - 1] if i > 0 else ""
        if prev.lower() == "--config":
            key, eq, _ = a.partition("=")
            if eq and _SECRET_KEY.search(key):
                a = key + "=***"
            elif not eq and _SECRET_KEY.search(key):
                mask_next = True  # "--config KEY VALUE": mask VALUE
        elif prev.lower() == "-external-id":
            a = "***"
        out.append(_URL_USERINFO.sub(r"\1***@", a))
    return " ".join(shlex.quote(a) for a in out)


class TermProgressParser:
    """
    Turns the utility's stdout into progress and text lines.

    GDALTermProgress prints "0", then one character per 2.5 % (a dot, or the
    tens at every 10 %: "0...10...20"), and " - done.\\n" at 100 %; after it
    (or in place of the rest when a run stops early) comes the summary text.
    Characters arrive in arbitrary chunks, so the parser keeps its state.
    """

    def __init__(self):
        self.tick = -1          # last 2.5 % step seen, -1 before the first
        self.digits = ""
        self.in_progress = True
        self.skip_done = False  # inside " - done." after 100
        self.text = ""

    def percent(self):
        return max(0.0, min(100.0, self.tick * 2.5))

    def _flush_number(self):
        if self.digits:
            self.tick = max(self.tick, int(self.digits) // 10 * 4)
            self.digits = ""

    def feed(self, chunk):
        """Consumes a chunk of stdout; returns the complete text lines it finished."""
        lines = []
        for ch in chunk:
            if self.in_progress and not self.skip_done:
                if ch.isdigit():
                    self.digits += ch
                    continue
                if ch == ".":
                    had_number = bool(self.digits)
                    self._flush_number()
                    if had_number and self.tick >= 40:
                        self.skip_done = True  # "100 - done." has no dots after 100
                        continue
                    self.tick += 1
                    continue
                self._flush_number()
                if self.tick >= 40 and ch in " -":
                    self.skip_done = True
                    continue
                self.in_progress = False  # the summary began before 100 %
            if self.skip_done:
                if ch == "\n":
                    self.skip_done = False
                    self.in_progress = False
                continue
            if ch == "\n":
                lines.append(self.text)
                self.text = ""
            else:
                self.text += ch
        return lines

    def finish(self):
        self._flush_number()
        rest, self.text = self.text, ""
        return [rest] if rest.strip() else []


def _reader(stream, tag, q):
    """Thread body: moves everything a pipe yields into the queue, then a None.
    os.read returns what is there (progress characters come one by one); the
    incremental decoder keeps a UTF-8 sequence cut between two reads whole."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        while True:
            data = os.read(stream.fileno(), 4096)
            if not data:
                break
            text = decoder.decode(data)
            if text:
                q.put((tag, text))
    except OSError:
        pass
    rest = decoder.decode(b"", final=True)
    if rest:
        q.put((tag, rest))
    q.put((tag, None))


class GdalAsyncDetectAlgorithm(QgsProcessingAlgorithm):
    INPUT = "INPUT"
    ENDPOINT = "ENDPOINT"
    INPUT_BUCKET = "INPUT_BUCKET"
    OUTPUT_BUCKET = "OUTPUT_BUCKET"
    INPUT_PREFIX = "INPUT_PREFIX"
    OUTPUT_PREFIX = "OUTPUT_PREFIX"
    CUSTOM_ATTRIBUTES = "CUSTOM_ATTRIBUTES"
    AWS_PROFILE = "AWS_PROFILE"
    AWS_REGION = "AWS_REGION"
    ENDPOINT_URL = "ENDPOINT_URL"
    EXTENT = "EXTENT"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    BANDS = "BANDS"
    SCALE = "SCALE"
    SCALE_RANGE = "SCALE_RANGE"
    TILE_FORMAT = "TILE_FORMAT"
    MERGE = "MERGE"
    MATCH_METRIC = "MATCH_METRIC"
    MERGE_THRESHOLD = "MERGE_THRESHOLD"
    MIN_SCORE = "MIN_SCORE"
    CLASS_AGNOSTIC = "CLASS_AGNOSTIC"
    POLLING_INTERVAL = "POLLING_INTERVAL"
    MAX_POLLING_INTERVAL = "MAX_POLLING_INTERVAL"
    MAX_WAIT_TIME = "MAX_WAIT_TIME"
    T_SRS = "T_SRS"
    RESUME = "RESUME"
    DRY_RUN = "DRY_RUN"
    LOAD_TILES = "LOAD_TILES"
    CANCEL_GRACE = "CANCEL_GRACE"
    EXTRA_OPTIONS = "EXTRA_OPTIONS"
    OUTPUT = "OUTPUT"
    METRICS = "METRICS"
    TILES = "TILES"
    EXIT_STATUS = "EXIT_STATUS"
    TILES_SUCCEEDED = "TILES_SUCCEEDED"
    TILES_FAILED = "TILES_FAILED"
    FEATURES = "FEATURES"

    # How long a cancelled utility gets after the second SIGINT before it is killed.
    STOP_TIMEOUT = 15.0

    def createInstance(self):
        return GdalAsyncDetectAlgorithm()

    def name(self):
        return "gdal_asyncdetect"

    def displayName(self):
        return "Detect objects (SageMaker async endpoint)"

    def group(self):
        return "Object detection"

    def groupId(self):
        return "objectdetection"

    def tags(self):
        return ["sagemaker", "aws", "async", "inference", "detection", "gdal_asyncdetect", "tiles",
                "object detection", "machine learning"]

    def shortHelpString(self):
        return (
            "Runs object detection over a raster of any size through an Amazon SageMaker asynchronous "
            "inference endpoint with the gdal_asyncdetect utility: the raster is cut into overlapping "
            "tiles, each tile is uploaded to the input bucket and sent to the endpoint, the detections "
            "are merged across tile overlaps and written, georeferenced, to the output (any OGR "
            "format). A second layer, the tile footprints with their status (succeeded, failed with "
            "the reason, skipped), shows where a partial run has gaps.\n\n"
            "Credentials come from the standard AWS chain: name a profile (the secret stays in "
            "~/.aws), or start QGIS with the AWS environment variables, SSO or an instance role. "
            "They are never parameters, so they never reach the Processing history or log. The "
            "endpoint URL parameter points the run at an S3 + SageMaker compatible server such as "
            "the local asyncdetect_endpoint.\n\n"
            "Cancel stops submitting tiles and waits up to 'Seconds to wait for tiles in flight' for "
            "them, then stops. Every tile's state is kept in a journal (inside a GeoPackage output, "
            "or OUTPUT.asdjournal.gpkg next to other formats): run again with 'Resume an interrupted "
            "run' checked and the same output to finish without invoking completed tiles again. "
            "If some tiles fail, the output is still written and the algorithm warns; resume retries "
            "them.\n\n"
            "The utility is found through the Processing setting {0}, the environment variable {1}, "
            "or PATH. 'Additional command-line options' takes any other gdal_asyncdetect option "
            "(gdal_asyncdetect --help), e.g. -max-concurrent-jobs 20 -cleanup-policy delayed."
        ).format(SETTING_BINARY, ENV_BINARY)

    def helpUrl(self):
        return ""

    # ------------------------------------------------------------------ parameters

    def _advanced(self, param):
        param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(param)

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Input raster"))
        self.addParameter(QgsProcessingParameterString(self.ENDPOINT, "SageMaker endpoint name"))
        self.addParameter(QgsProcessingParameterString(
            self.INPUT_BUCKET, "Input S3 bucket (tiles are uploaded there; empty: $ASYNC_SM_INPUT_BUCKET)",
            optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.AWS_PROFILE, "AWS profile (empty: the standard AWS chain)", optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.AWS_REGION, "AWS region (empty: AWS_REGION or the profile's)", optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.ENDPOINT_URL, "Endpoint URL (empty: AWS; e.g. http://127.0.0.1:PORT for the local endpoint)",
            optional=True))
        self.addParameter(QgsProcessingParameterExtent(
            self.EXTENT, "Process only this extent (empty: the whole raster)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.TILE_SIZE, "Tile size (pixels)", QgsProcessingParameterNumber.Integer, 512, False, 16, 65536))
        self.addParameter(QgsProcessingParameterNumber(
            self.OVERLAP, "Tile overlap (pixels)", QgsProcessingParameterNumber.Integer, 128, False, 0, 65535))
        self.addParameter(QgsProcessingParameterBand(
            self.BANDS, "Bands sent to the model (empty: all, or the first three)", None, self.INPUT,
            optional=True, allowMultiple=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.SCALE, "Rescale to 8 bits",
            ["No", "Each band's minimum/maximum", "From the range below"], defaultValue=0))
        self.addParameter(QgsProcessingParameterRange(
            self.SCALE_RANGE, "Source range to rescale from", QgsProcessingParameterNumber.Double,
            optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.MERGE, "Merge detections across tile overlaps", MERGE_MODES, defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum(
            self.MATCH_METRIC, "Match metric (ios: intersection over the smaller box)", MATCH_METRICS,
            defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.MERGE_THRESHOLD, "Merge threshold", QgsProcessingParameterNumber.Double, 0.5, False, 0.0, 1.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_SCORE, "Minimum score", QgsProcessingParameterNumber.Double, 0.0, False, 0.0, 1.0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.CLASS_AGNOSTIC, "Merge boxes of different classes too", False))
        self.addParameter(QgsProcessingParameterBoolean(
            self.RESUME, "Resume an interrupted run (same input, options and output)", False))

        self._advanced(QgsProcessingParameterString(
            self.OUTPUT_BUCKET, "Output S3 bucket (when the endpoint's configuration uses it)", optional=True))
        self._advanced(QgsProcessingParameterString(
            self.INPUT_PREFIX, "Input key prefix (empty: async-inference/input/)", optional=True))
        self._advanced(QgsProcessingParameterString(
            self.OUTPUT_PREFIX, "Output key prefix (empty: async-inference/output/)", optional=True))
        self._advanced(QgsProcessingParameterString(
            self.CUSTOM_ATTRIBUTES, "Custom attributes passed to the model (e.g. model_selection=ships)",
            optional=True))
        self._advanced(QgsProcessingParameterEnum(
            self.TILE_FORMAT, "Tile encoding sent to the model", TILE_FORMATS, defaultValue=0))
        self._advanced(QgsProcessingParameterNumber(
            self.POLLING_INTERVAL, "Polling interval (s; empty: 30)", QgsProcessingParameterNumber.Double,
            None, True, 0.01))
        self._advanced(QgsProcessingParameterNumber(
            self.MAX_POLLING_INTERVAL, "Maximum polling interval (s; empty: 300)",
            QgsProcessingParameterNumber.Double, None, True, 0.01))
        self._advanced(QgsProcessingParameterNumber(
            self.MAX_WAIT_TIME, "Maximum wait for one tile (s; empty: 3600)", QgsProcessingParameterNumber.Double,
            None, True, 1.0))
        self._advanced(QgsProcessingParameterCrs(
            self.T_SRS, "Output CRS (empty: EPSG:4326, longitude/latitude)", "EPSG:4326", optional=True))
        self._advanced(QgsProcessingParameterNumber(
            self.CANCEL_GRACE, "Seconds to wait for tiles in flight when cancelled",
            QgsProcessingParameterNumber.Double, 10.0, False, 0.0, 86400.0))
        self._advanced(QgsProcessingParameterString(
            self.EXTRA_OPTIONS, "Additional command-line options (no credentials)", optional=True))
        self._advanced(QgsProcessingParameterBoolean(
            self.LOAD_TILES, "Also load the tile-status layer", True))
        self._advanced(QgsProcessingParameterBoolean(
            self.DRY_RUN, "Check only: plan the tiles, check credentials and buckets, invoke nothing", False))

        dest = QgsProcessingParameterVectorDestination(
            self.OUTPUT, "Detections", QgsProcessing.TypeVectorPolygon)
        # The utility writes files (and its journal beside or inside them);
        # a memory layer would lose both, so only file outputs are offered.
        dest.setSupportsNonFileBasedOutput(False)
        self.addParameter(dest)
        metrics = QgsProcessingParameterFileDestination(
            self.METRICS, "Run metrics (JSON: figures, failed tiles with reason and inference id)",
            "JSON files (*.json)", optional=True, createByDefault=False)
        self.addParameter(metrics)

        self.addOutput(QgsProcessingOutputVectorLayer(
            self.TILES, "Tile footprints and status", QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputNumber(self.EXIT_STATUS, "Exit status of gdal_asyncdetect"))
        self.addOutput(QgsProcessingOutputNumber(self.TILES_SUCCEEDED, "Tiles succeeded"))
        self.addOutput(QgsProcessingOutputNumber(self.TILES_FAILED, "Tiles failed"))
        self.addOutput(QgsProcessingOutputNumber(self.FEATURES, "Detections written"))

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS's name)
        """What the dialog can say before anything runs (the utility checks the rest)."""
        ok, msg = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, msg
        tile = self.parameterAsInt(parameters, self.TILE_SIZE, context)
        overlap = self.parameterAsInt(parameters, self.OVERLAP, context)
        if overlap >= tile:
            return False, "The tile overlap ({}) must be smaller than the tile size ({})".format(overlap, tile)
        if self.parameterAsEnum(parameters, self.SCALE, context) == 2:
            rng = self.parameterAsRange(parameters, self.SCALE_RANGE, context)
            if not rng or len(rng) != 2 or not all(math.isfinite(v) for v in rng) or rng[0] >= rng[1]:
                return False, "Rescaling from a range needs a source range with minimum < maximum"
        return True, ""

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _is_set(parameters, name):
        v = parameters.get(name)
        return v is not None and v != "" and not (hasattr(v, "isNull") and v.isNull())

    def _source_name(self, layer):
        """The GDAL dataset name of the input layer."""
        provider = layer.providerType()
        if provider != "gdal":
            raise QgsProcessingException(
                "the input layer '{}' is read by QGIS's '{}' provider, not by GDAL: save it as a GeoTIFF "
                "(or any GDAL format) first".format(layer.name(), provider))
        source = layer.source()
        # QGIS appends its own options after "|" (e.g. "|option:..."); GDAL names never contain one.
        return source.split("|", 1)[0]

    def _destination(self, dest):
        """(file path, layer name or None) of the OUTPUT destination."""
        if dest.startswith("ogr:"):
            uri = QgsDataSourceUri(dest[4:])
            return uri.database(), (uri.table() or None)
        return dest, None

    @staticmethod
    def _drop_tables(path, names, feedback):
        """Drops the named tables of an existing multi-layer file (the others stay)."""
        try:
            conn = QgsProviderRegistry.instance().providerMetadata("ogr").createConnection(path, {})
            existing = {t.tableName() for t in conn.tables()}
            for name in names:
                if name in existing:
                    conn.dropVectorTable("", name)
                    feedback.pushInfo("Replaced table '{}' of {}".format(name, path))
        except QgsProviderConnectionException as e:
            raise QgsProcessingException("cannot replace table(s) {} of '{}': {}".format(
                ", ".join(names), path, e))

    def _build_args(self, parameters, context, feedback, layer, path, layer_name, metrics_path,
                    keep_file=False):
        args = []

        def opt(flag, value):
            args.extend([flag, str(value)])

        def string_param(name, flag):
            value = self.parameterAsString(parameters, name, context).strip()
            if value:
                opt(flag, value)

        endpoint = self.parameterAsString(parameters, self.ENDPOINT, context).strip()
        if not endpoint:
            raise QgsProcessingException("the SageMaker endpoint name is empty")
        opt("-endpoint", endpoint)
        string_param(self.INPUT_BUCKET, "-input-bucket")
        string_param(self.OUTPUT_BUCKET, "-output-bucket")
        string_param(self.INPUT_PREFIX, "-input-prefix")
        string_param(self.OUTPUT_PREFIX, "-output-prefix")
        string_param(self.AWS_PROFILE, "-profile")
        string_param(self.AWS_REGION, "-region")
        string_param(self.CUSTOM_ATTRIBUTES, "-custom-attributes")

        opt("-tile-size", self.parameterAsInt(parameters, self.TILE_SIZE, context))
        opt("-overlap", self.parameterAsInt(parameters, self.OVERLAP, context))
        if self._is_set(parameters, self.EXTENT):
            ext = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
            if not ext.isNull() and not ext.isEmpty():
                args += ["-projwin", repr(ext.xMinimum()), repr(ext.yMaximum()),
                         repr(ext.xMaximum()), repr(ext.yMinimum())]
        for band in self.parameterAsInts(parameters, self.BANDS, context) or []:
            opt("-b", band)
        scale = self.parameterAsEnum(parameters, self.SCALE, context)
        if scale == 1:
            args.append("-scale")
        elif scale == 2:
            rng = self.parameterAsRange(parameters, self.SCALE_RANGE, context)
            # An empty range widget gives "None,None", i.e. NaNs.
            if not rng or len(rng) != 2 or not all(math.isfinite(v) for v in rng) or rng[0] >= rng[1]:
                raise QgsProcessingException("rescaling from a range needs a source range with minimum < maximum")
            args += ["-scale", repr(rng[0]), repr(rng[1])]
        fmt = TILE_FORMATS[self.parameterAsEnum(parameters, self.TILE_FORMAT, context)]
        if fmt != "PNG":
            opt("-tile-format", fmt)

        opt("-merge", MERGE_MODES[self.parameterAsEnum(parameters, self.MERGE, context)])
        opt("-match-metric", MATCH_METRICS[self.parameterAsEnum(parameters, self.MATCH_METRIC, context)])
        opt("-merge-threshold", repr(self.parameterAsDouble(parameters, self.MERGE_THRESHOLD, context)))
        opt("-min-score", repr(self.parameterAsDouble(parameters, self.MIN_SCORE, context)))
        if self.parameterAsBool(parameters, self.CLASS_AGNOSTIC, context):
            args.append("-class-agnostic")

        for name, flag in ((self.POLLING_INTERVAL, "-polling-interval"),
                           (self.MAX_POLLING_INTERVAL, "-max-polling-interval"),
                           (self.MAX_WAIT_TIME, "-max-wait-time")):
            if self._is_set(parameters, name):
                opt(flag, repr(self.parameterAsDouble(parameters, name, context)))

        crs = self.parameterAsCrs(parameters, self.T_SRS, context)
        if self._is_set(parameters, self.T_SRS) and crs.isValid():
            opt("-t_srs", crs.authid() or crs.toWkt(QgsCoordinateReferenceSystem.WKT_PREFERRED))

        if layer_name:
            opt("-nln", layer_name)
        # Processing overwrites its destinations; a resumed run must keep the
        # output (its journal is in it or next to it).  A table saved into an
        # existing GeoPackage replaces that table only: the utility's
        # -overwrite would replace the whole file, with the user's other
        # layers, so the table is dropped beforehand and the run appends.
        if self.parameterAsBool(parameters, self.RESUME, context):
            args.append("-resume")
        else:
            args.append("-append" if keep_file else "-overwrite")
        if self.parameterAsBool(parameters, self.DRY_RUN, context):
            args.append("-dry-run")
        opt("-metrics", metrics_path)

        extra = self.parameterAsString(parameters, self.EXTRA_OPTIONS, context).strip()
        if extra:
            if _CREDENTIAL_WORDS.search(extra):
                raise QgsProcessingException(
                    "credentials are not accepted in the additional options (Processing keeps them in its "
                    "history): use an AWS profile, or the AWS environment variables set before QGIS starts")
            try:
                args += shlex.split(extra)
            except ValueError as e:
                raise QgsProcessingException("cannot parse the additional options: {}".format(e))

        args += [self._source_name(layer), path]
        return args

    # ------------------------------------------------------------------ running

    @staticmethod
    def _kill(proc):
        """Last resort when the algorithm itself fails: stop the utility now and reap it."""
        for sig, wait in ((signal.SIGINT, 2.0), (signal.SIGINT, 5.0), (signal.SIGKILL, None)):
            if proc.poll() is not None:
                break
            try:
                proc.send_signal(sig)
                if wait:
                    proc.wait(timeout=wait)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        proc.wait()

    def _run(self, binary, args, env, grace, feedback):
        """Runs the utility; returns (exit status, error lines, cancelled).

        Everything that touches the feedback happens on this thread: two
        reader threads only move the pipes' bytes into a queue, and cancel is
        a small state machine driven from the same loop (SIGINT = drain, after
        `grace` s SIGINT again = stop now, STOP_TIMEOUT s later SIGKILL)."""
        proc = subprocess.Popen([binary] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, close_fds=True)
        q = queue.Queue()
        readers = [threading.Thread(target=_reader, args=(proc.stdout, "out", q), daemon=True),
                   threading.Thread(target=_reader, args=(proc.stderr, "err", q), daemon=True)]
        for t in readers:
            t.start()
        parser = TermProgressParser()
        errors = []
        err_partial = ""
        open_pipes = 2
        stage = 0          # 0 running, 1 draining, 2 stopping, 3 killed
        deadline = None
        ok = False
        try:
            while open_pipes:
                if stage == 0 and feedback.isCanceled():
                    feedback.pushInfo("Cancelling: gdal_asyncdetect stops submitting tiles and waits up to "
                                      "{:g} s for the tiles in flight".format(grace))
                    self._signal(proc, signal.SIGINT)
                    stage, deadline = 1, time.monotonic() + grace
                elif stage in (1, 2) and time.monotonic() >= deadline and proc.poll() is None:
                    if stage == 1:
                        feedback.pushInfo("Cancelling: stopping now (the tiles still in flight are left "
                                          "to -resume)")
                        self._signal(proc, signal.SIGINT)
                        stage, deadline = 2, time.monotonic() + self.STOP_TIMEOUT
                    else:
                        feedback.reportError("gdal_asyncdetect did not stop; killing it", False)
                        self._signal(proc, signal.SIGKILL)
                        stage = 3
                try:
                    tag, data = q.get(timeout=0.1)
                except queue.Empty:
                    continue
                if data is None:
                    open_pipes -= 1
                    continue
                if tag == "out":
                    before = parser.percent()
                    for line in parser.feed(data):
                        if line.strip():
                            feedback.pushConsoleInfo(line)
                    if parser.percent() != before:
                        feedback.setProgress(parser.percent())
                else:
                    err_partial += data
                    *lines, err_partial = err_partial.split("\n")
                    for line in lines:
                        self._stderr_line(line, errors, feedback)
            if err_partial:
                self._stderr_line(err_partial, errors, feedback)
            for line in parser.finish():
                feedback.pushConsoleInfo(line)
            ok = True
        finally:
            if not ok:
                self._kill(proc)  # never leave the utility running behind an error of ours
            proc.wait()
            for t in readers:
                t.join(timeout=5)
            proc.stdout.close()
            proc.stderr.close()
        return proc.returncode, errors, stage > 0

    @staticmethod
    def _signal(proc, sig):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass

    @staticmethod
    def _stderr_line(line, errors, feedback):
        line = line.rstrip("\r")
        if not line.strip():
            return
        m = re.match(r"^gdal_asyncdetect: (ERROR|Warning) \d+: (.*)$", line)
        if m and m.group(1) == "ERROR":
            errors.append(m.group(2))
            feedback.reportError(m.group(2), False)
        elif m:
            if hasattr(feedback, "pushWarning"):
                feedback.pushWarning(m.group(2))
            else:
                feedback.reportError(m.group(2), False)
        else:
            feedback.pushConsoleInfo(line)

    def processAlgorithm(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.invalidRasterError(parameters, self.INPUT))
        dest = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        path, layer_name = self._destination(dest)
        if not path:
            raise QgsProcessingException("the output must be a file")
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        metrics_path = self.parameterAsFileOutput(parameters, self.METRICS, context)
        if not metrics_path:
            metrics_path = QgsProcessingUtils.generateTempFilename("gdal_asyncdetect_metrics.json")
        binary = find_binary()
        keep_file = (bool(layer_name) and os.path.exists(path)
                     and not self.parameterAsBool(parameters, self.RESUME, context))
        args = self._build_args(parameters, context, feedback, layer, path, layer_name, metrics_path, keep_file)
        if keep_file and "-dry-run" not in args:
            self._drop_tables(path, [layer_name, layer_name + "_tiles"], feedback)

        env = dict(os.environ)
        url = self.parameterAsString(parameters, self.ENDPOINT_URL, context).strip()
        if url:
            env["AWS_ENDPOINT_URL"] = url
            feedback.pushCommandInfo("AWS_ENDPOINT_URL=" + _URL_USERINFO.sub(r"\1***@", url))
        feedback.pushCommandInfo(redact_command([binary] + args))

        if os.path.exists(metrics_path):
            os.remove(metrics_path)  # so a stale file is never read as this run's figures
        grace = self.parameterAsDouble(parameters, self.CANCEL_GRACE, context)
        status, errors, cancelled = self._run(binary, args, env, grace, feedback)

        metrics = {}
        try:
            with open(metrics_path, encoding="utf-8") as f:
                metrics = json.load(f)
        except (OSError, ValueError):
            pass
        journal = path if path.lower().endswith(".gpkg") else path + ".asdjournal.gpkg"

        if cancelled or status == EXIT_INTERRUPTED:
            raise QgsProcessingException(
                "Cancelled: gdal_asyncdetect stopped ({}); the journal {} keeps every finished tile: run again "
                "with 'Resume an interrupted run' checked and the same output to finish".format(
                    "exit status {}".format(status) if status >= 0 else "signal {}".format(-status), journal))
        if status < 0:
            raise QgsProcessingException("gdal_asyncdetect was killed by signal {}{}".format(
                -status, (": " + errors[-1]) if errors else ""))
        if status not in (EXIT_OK, EXIT_PARTIAL):
            why = errors[-1] if errors else "exit status {} without a message".format(status)
            raise QgsProcessingException("gdal_asyncdetect: " + why)

        tiles = metrics.get("tiles", {})
        if status == EXIT_PARTIAL:
            msg = ("{} of {} tiles failed (their footprints and reasons are in the tile-status layer); the "
                   "detections of the other tiles are written. Run again with 'Resume an interrupted run' "
                   "checked to retry only the failed tiles.").format(
                       tiles.get("failed", "some"), tiles.get("planned", "the"))
            if hasattr(feedback, "pushWarning"):
                feedback.pushWarning(msg)
            else:
                feedback.reportError(msg, False)

        if "-dry-run" in args:
            # Nothing was written: there is no layer to load or return.
            if context.willLoadLayerOnCompletion(dest):
                layers = context.layersToLoadOnCompletion()
                layers.pop(dest, None)
                context.setLayersToLoadOnCompletion(layers)
            return {self.OUTPUT: None, self.TILES: None, self.EXIT_STATUS: status,
                    self.TILES_SUCCEEDED: None, self.TILES_FAILED: None, self.FEATURES: None}

        det_uri, tiles_uri = self._layer_uris(path, layer_name or "detections", args)
        self._load_on_completion(context, dest, det_uri, tiles_uri,
                                 self.parameterAsBool(parameters, self.LOAD_TILES, context))
        results = {
            self.OUTPUT: det_uri,
            self.TILES: tiles_uri,
            self.EXIT_STATUS: status,
            self.TILES_SUCCEEDED: tiles.get("succeeded"),
            self.TILES_FAILED: tiles.get("failed"),
            self.FEATURES: metrics.get("features", {}).get("kept"),
        }
        if self.parameterAsFileOutput(parameters, self.METRICS, context):
            results[self.METRICS] = metrics_path
        return results

    @staticmethod
    def _layer_uris(path, det_name, args):
        """URIs of the detections and tile-status layers (None when that layer was not written)."""
        # The utility's rule (additional options may carry -nln / -status-nln too).
        options = args[:-2]
        for i, a in enumerate(options[:-1]):
            if a == "-nln":
                det_name = options[i + 1]
        tiles_name = det_name + "_tiles" if det_name != "detections" else "tiles"
        for i, a in enumerate(options[:-1]):
            if a == "-status-nln":
                tiles_name = options[i + 1]
        whole = QgsVectorLayer(path, "probe", "ogr")
        if whole.isValid() and len(whole.dataProvider().subLayers()) <= 1:
            return path, None  # single-layer formats (GeoJSON, Shapefile, FlatGeobuf...)
        det_uri = "{}|layername={}".format(path, det_name)
        if not QgsVectorLayer(det_uri, "probe", "ogr").isValid():
            det_uri = path
        tiles_uri = "{}|layername={}".format(path, tiles_name)
        if det_uri == path or not QgsVectorLayer(tiles_uri, "probe", "ogr").isValid():
            tiles_uri = None
        return det_uri, tiles_uri

    def _load_on_completion(self, context, dest, det_uri, tiles_uri, load_tiles):
        """Makes Processing load the detections layer (not the file's first layer) and the tiles."""
        if not context.willLoadLayerOnCompletion(dest):
            return
        details = context.layerToLoadOnCompletionDetails(dest)
        layers = context.layersToLoadOnCompletion()
        layers.pop(dest, None)
        vector = QgsProcessingUtils.LayerHint.Vector
        layers[det_uri] = QgsProcessingContext.LayerDetails(
            details.name or "Detections", details.project, self.OUTPUT, vector)
        if load_tiles and tiles_uri:
            layers[tiles_uri] = QgsProcessingContext.LayerDetails(
                (details.name or "Detections") + " tiles", details.project, self.TILES, vector)
        context.setLayersToLoadOnCompletion(layers)
