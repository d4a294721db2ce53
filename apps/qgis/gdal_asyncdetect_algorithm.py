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
    parsed into QgsProcessingFeedback.setProgress(), the summary is logged
    (command-line advice such as "rerun with -resume" put in the dialog's
    words) and its "Tile status:" line names the tile-status file of a
    one-layer output;
  * stderr: "gdal_asyncdetect: ERROR n: message" (one line each) and
    "gdal_asyncdetect: Warning n: message"; errors are logged in full and
    the last one, cut to one sentence (what failed, then why, without
    request ids), is the QgsProcessingException text: one copy of each
    error, the details in the log;
  * the -metrics JSON file, written at the end of every run that started,
    for the figures returned as outputs (tiles succeeded/failed, features).

What it loads: the detections and the tile-status layer (for one-layer
formats too: the sibling file), each with the default style the utility
wrote into the output (GeoPackage layer_styles, or the .qml beside a
one-layer file; tiler/styles.c), and the tiles below the detections.
Processing loads outputs with its own default style and in the order of
their URIs, so a post-processor (LayerStyler) loads the output's style and
moves the tiles below the detections once both are in the project.

Cancel: the first SIGINT makes the utility stop submitting and drain the
tiles in flight, and the log says so; after CANCEL_GRACE seconds a second
SIGINT stops it at once (the journal holds every committed state, so
"Resume" loses nothing); a process that still has not exited some seconds
later is killed.  The child is always reaped before the algorithm returns.
A run whose tiles were all sent before the Cancel and all finished is
complete: it returns its results like any other run, and because Processing
loads no layer for a cancelled algorithm, the algorithm loads them itself,
on the main thread (MainThreadLoader); its dialog (DetectAlgorithmDialog)
reports it as completed, where Processing's own would print a red
"Execution failed" for any cancelled task.  An interrupted run fails with the
number of finished tiles and how to resume.

File-system errors (an output under a file, a folder that cannot be
created or written, a metrics file that cannot be replaced) are checked
before the run and reported in one sentence, never as a traceback.

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

from qgis.PyQt.QtCore import QCoreApplication, QObject, QUrl, pyqtSignal, pyqtSlot
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsDataSourceUri,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
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
    QgsProject,
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

# (utility word, what the dialog shows), in the order of the enum parameters.
MERGE_MODES = [("nmm", "Merge overlapping boxes into one (NMM)"),
               ("nms", "Keep the best-scoring box (NMS)"),
               ("soft-nms", "Lower the scores of overlapping boxes (soft-NMS)"),
               ("none", "Keep every box")]
MATCH_METRICS = [("ios", "Overlap / smaller box (IoS)"),
                 ("iou", "Overlap / union of the boxes (IoU)")]
TILE_FORMATS = [("PNG", "PNG (lossless)"), ("GTiff", "GeoTIFF (georeferenced)"), ("JPEG", "JPEG (smallest)"),
                ("NITF", "NITF")]

# Lines of the utility's SIGINT handler: the algorithm says the same in GUI words.
_SIGINT_LINES = re.compile(r"^gdal_asyncdetect: (interrupted: no new tiles|stopping now)")
# Command-line advice in the utility's summary, and the same advice for a dialog.
_CLI_ADVICE = [(re.compile(r"rerun (the same command )?with -resume"), "check Resume and run again"),
               (re.compile(r"\(see --help\)|, see --help"), ""),
               (re.compile(r"\(check -endpoint and -region[^)]*\)"), "(check the SageMaker endpoint and the AWS region)")]


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
        "Processing setting {} to its full path.".format("; ".join(tried), ENV_BINARY, SETTING_BINARY))


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


def gui_words(text):
    """The utility's text with command-line advice put in the dialog's words."""
    for pattern, words in _CLI_ADVICE:
        text = pattern.sub(words, text)
    return text


def one_sentence(message):
    """A one-sentence form of one of the utility's error lines, for the failure message.

    The utility chains context and cause ("endpoint 'x': invocation failed: POST
    http://...: Endpoint x of account ... not found. (HTTP 400, ValidationError,
    request id ...)"); the dialog shows the first link (what failed) and the
    last one (why), without the request details, which stay in the log."""
    links = [part.strip() for part in message.split(": ") if part.strip()]
    if not links:
        return "gdal_asyncdetect failed without a message."
    why = re.sub(r"\s*\((after \d+ attempts?|HTTP \d+[^)]*|request id[^)]*)\)", "", links[-1]).strip()
    text = links[0] if len(links) == 1 else "{}: {}".format(links[0], why)
    text = gui_words(text).strip()
    if len(text) > 300:
        text = text[:297].rstrip() + "..."
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def check_output_folder(path, what):
    """Creates the folder of an output file, or raises QgsProcessingException saying why it cannot."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(folder):
        if not os.access(folder, os.W_OK | os.X_OK):
            raise QgsProcessingException("Cannot write the {} in '{}': permission denied.".format(what, folder))
        return
    # The nearest existing ancestor says what is wrong, e.g. a file where a folder should be.
    ancestor = folder
    while ancestor and not os.path.exists(ancestor):
        parent = os.path.dirname(ancestor)
        if parent == ancestor:
            break
        ancestor = parent
    if ancestor and os.path.exists(ancestor) and not os.path.isdir(ancestor):
        raise QgsProcessingException(
            "Cannot create the folder '{}' for the {}: '{}' is a file, not a folder.".format(folder, what, ancestor))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise QgsProcessingException("Cannot create the folder '{}' for the {}: {}.".format(
            folder, what, e.strerror or e))


def apply_default_style(layer):
    """Loads the style the utility wrote with the output (a GeoPackage's layer_styles
    row, or the .qml beside a one-layer file); False when there is none."""
    try:
        _, ok = layer.loadDefaultStyle()
    except Exception:  # noqa: BLE001 (a style is never worth failing the run)
        return False
    if ok:
        layer.triggerRepaint()
    return ok


def order_layers(project, detections_id, tiles_id):
    """Puts the tile-status layer just below the detections in the layer tree."""
    if not project or not detections_id or not tiles_id:
        return
    root = project.layerTreeRoot()
    det, tiles = root.findLayer(detections_id), root.findLayer(tiles_id)
    if det is None or tiles is None or det.parent() is not tiles.parent():
        return
    parent = det.parent()
    children = parent.children()
    i_det, i_tiles = children.index(det), children.index(tiles)
    if i_tiles > i_det:
        return  # already below
    clone = tiles.clone()
    parent.insertChildNode(i_det + 1, clone)
    parent.removeChildNode(tiles)


class LayerStyler(QgsProcessingLayerPostProcessorInterface):
    """Runs when Processing has added one of the two output layers to the project:
    applies the output's own style and puts the tiles below the detections."""

    def __init__(self, role, shared):
        super().__init__()
        self.role = role        # "detections" or "tiles"
        self.shared = shared    # role -> layer id, common to the run's two stylers

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS's name)
        apply_default_style(layer)
        self.shared[self.role] = layer.id()
        project = context.project() or QgsProject.instance()
        order_layers(project, self.shared.get("detections"), self.shared.get("tiles"))


# Post-processors must outlive the algorithm object (Processing keeps raw
# pointers to them until the layers are loaded): they are kept here.
_STYLERS = []


class MainThreadLoader(QObject):
    """Loads layers into a project from the algorithm's thread, on the main thread.

    Needed when the user pressed Cancel but the run completed anyway: Processing
    loads no layer for a cancelled algorithm, and a project may only be changed
    from the main thread."""
    request = pyqtSignal(object)

    def __init__(self):
        super().__init__()
        self.request.connect(self._load)  # queued: the loader lives in the main thread

    @pyqtSlot(object)
    def _load(self, job):
        project, layers = job
        added = {}
        for role, uri, name in layers:  # tiles first: each new layer goes on top
            layer = QgsVectorLayer(uri, name, "ogr")
            if layer.isValid():
                project.addMapLayer(layer)
                added[role] = layer.id()
        order_layers(project, added.get("detections"), added.get("tiles"))


_LOADER = None


def main_thread_loader():
    """The loader, in the application's main thread (created there at import)."""
    global _LOADER
    if _LOADER is None:
        _LOADER = MainThreadLoader()
        app = QCoreApplication.instance()
        if app is not None:
            _LOADER.moveToThread(app.thread())
    return _LOADER


if QCoreApplication.instance() is not None:
    main_thread_loader()


# The Qt property the algorithm sets on its feedback when a run completed
# although the user pressed Cancel (every tile had been sent and finished).
COMPLETED_AFTER_CANCEL = "asyncdetect_completed_after_cancel"


def detect_dialog_class():
    """The algorithm's dialog: Processing's AlgorithmDialog, told the truth about a completed run.

    A Cancel sets the Processing feedback's cancelled flag, which nothing can
    clear, and QgsProcessingAlgRunnerTask then reports the task as failed
    whatever the algorithm returned: the dialog would print a red "Execution
    failed" under a run that wrote its complete output (its results are
    returned and its layers loaded).  When the algorithm marks the feedback
    (COMPLETED_AFTER_CANCEL), this dialog reports that line as completed
    and finishes as after a success; anything else is Processing's own
    behaviour.  Imported late: qgis_process has no Processing GUI."""
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    class DetectAlgorithmDialog(AlgorithmDialog):
        def createFeedback(self):  # noqa: N802 (QGIS's name)
            feedback = super().createFeedback()
            report_error = feedback.reportError

            def reportError(error, fatalError=False):  # noqa: N802, N803 (QGIS's names)
                if feedback.property(COMPLETED_AFTER_CANCEL) and "failed after" in error:
                    feedback.pushInfo(error.replace("Execution failed after",
                                                    "Execution completed (Cancel came after the last tile) in"))
                    return
                report_error(error, fatalError)
            feedback.reportError = reportError
            return feedback

        def finish(self, successful, result, context, feedback, in_place=False):
            if not successful and feedback is not None and feedback.property(COMPLETED_AFTER_CANCEL):
                successful = True
            super().finish(successful, result, context, feedback, in_place)

    return DetectAlgorithmDialog


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

    def createCustomParametersWidget(self, parent=None):  # noqa: N802 (QGIS's name)
        """Processing's own dialog, which reports a run that completed after Cancel as completed."""
        try:
            return detect_dialog_class()(self, parent=parent)
        except ImportError:  # no Processing GUI (qgis_process): the default dialog, never shown
            return None

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
            "<p>Finds objects in a raster of any size with an Amazon SageMaker <i>asynchronous</i> inference "
            "endpoint, through the gdal_asyncdetect utility. The raster is cut into overlapping tiles; each tile "
            "is uploaded to the input bucket and sent to the endpoint; the detections are merged across the "
            "overlaps and written, georeferenced, to the output. A second layer shows every tile with its "
            "status: failed tiles in red (with the reason), skipped tiles faint.</p>"
            "<h3>Parameters</h3><dl>"
            "<dt>SageMaker endpoint</dt><dd>The name of the asynchronous endpoint.</dd>"
            "<dt>Input bucket</dt><dd>S3 bucket the tiles are uploaded to (empty: $ASYNC_SM_INPUT_BUCKET).</dd>"
            "<dt>AWS profile, AWS region</dt><dd>Credentials come from the standard AWS chain: a profile "
            "(the secret stays in ~/.aws), or AWS environment variables set before QGIS started, SSO, an "
            "instance role. They are never parameters, so they never reach the Processing history.</dd>"
            "<dt>Endpoint URL</dt><dd>An S3 + SageMaker compatible server instead of AWS, such as the local "
            "asyncdetect_endpoint (http://127.0.0.1:PORT).</dd>"
            "<dt>Extent</dt><dd>Only the tiles covering this extent (any CRS); empty: the whole raster.</dd>"
            "<dt>Tile size, Tile overlap</dt><dd>In pixels. The overlap should exceed the largest object so "
            "that every object lies whole in some tile.</dd>"
            "<dt>Bands, Rescale to 8 bits</dt><dd>Bands sent to the model (empty: all, or the first three) and "
            "how values are brought to 0-255: not at all, from each band's minimum/maximum, or from the "
            "given range.</dd>"
            "<dt>Merging, Overlap measure, Merge threshold</dt><dd>What happens to boxes found twice in "
            "overlapping tiles: merged into one box (NMM), only the best kept (NMS), scores lowered "
            "(soft-NMS), or all kept. Two boxes are the same object when their overlap, divided by the "
            "smaller box (IoS) or by their union (IoU), reaches the threshold.</dd>"
            "<dt>Minimum score</dt><dd>Detections scoring less are dropped.</dd>"
            "<dt>Merge across classes</dt><dd>Also merge overlapping boxes of different classes.</dd>"
            "<dt>Resume</dt><dd>Finish an interrupted, cancelled or partly failed run: same input, options "
            "and output. Completed tiles are not sent again; failed ones are retried.</dd>"
            "<dt>Output CRS</dt><dd>Empty: the input raster's CRS.</dd>"
            "<dt>Polling interval, Maximum polling interval</dt><dd>How often the endpoint's output is "
            "checked. Empty: gdal_asyncdetect's own schedule, which adapts to the endpoint's latency in "
            "recent versions (older ones first check after 30 s, so a quick job waits that long). Setting "
            "them fixes the schedule.</dd>"
            "<dt>Cancel: wait for tiles in flight</dt><dd>After Cancel, no new tile is sent; the tiles "
            "already at the endpoint get this many seconds to finish, the rest is left for Resume.</dd>"
            "<dt>Additional options</dt><dd>Any other gdal_asyncdetect option, e.g. -max-concurrent-jobs 20 "
            "(no credentials).</dd>"
            "<dt>Check only</dt><dd>Plan the tiles, check credentials and buckets; send nothing, write "
            "nothing.</dd></dl>"
            "<p>Every tile's state is kept in a journal (inside a GeoPackage output, or OUTPUT.asdjournal.gpkg "
            "beside other formats), so Resume loses nothing. The outputs carry their own map style: QGIS "
            "draws detections as outlines coloured by class and tiles by status wherever they are opened. "
            "The utility is found through the Processing setting {0}, the environment variable {1}, or "
            "PATH.</p>"
        ).format(SETTING_BINARY, ENV_BINARY)

    def helpUrl(self):
        """The README beside the algorithm (plugin, installed copy), else none."""
        here = os.path.dirname(os.path.abspath(__file__))
        for candidate in (os.path.join(here, "README.md"),
                          os.path.join(here, "gdal_asyncdetect", "README.md"),
                          "/usr/local/share/asyncdetect/qgis/gdal_asyncdetect/README.md",
                          "/usr/share/asyncdetect/qgis/gdal_asyncdetect/README.md"):
            if os.path.isfile(candidate):
                return QUrl.fromLocalFile(candidate).toString()
        return ""

    # ------------------------------------------------------------------ parameters

    def _add(self, param, help_text=None, advanced=False):
        if help_text:
            param.setHelp(help_text)
        if advanced:
            param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(param)

    def initAlgorithm(self, config=None):
        number = QgsProcessingParameterNumber
        add = self._add
        add(QgsProcessingParameterRasterLayer(self.INPUT, "Input raster"),
            "Any raster QGIS reads through GDAL (files, /vsis3/, /vsicurl/...)")
        add(QgsProcessingParameterString(self.ENDPOINT, "SageMaker endpoint"),
            "Name of the asynchronous inference endpoint")
        add(QgsProcessingParameterString(self.INPUT_BUCKET, "Input bucket", optional=True),
            "S3 bucket the tiles are uploaded to; empty: $ASYNC_SM_INPUT_BUCKET")
        add(QgsProcessingParameterString(self.AWS_PROFILE, "AWS profile", optional=True),
            "Profile of ~/.aws/config or ~/.aws/credentials; empty: the standard AWS chain")
        add(QgsProcessingParameterString(self.AWS_REGION, "AWS region", optional=True),
            "Empty: AWS_REGION or the profile's region")
        add(QgsProcessingParameterString(self.ENDPOINT_URL, "Endpoint URL", optional=True),
            "Empty: AWS. An S3 + SageMaker compatible server, e.g. http://127.0.0.1:PORT for the local endpoint")
        add(QgsProcessingParameterExtent(self.EXTENT, "Extent", optional=True),
            "Process only the tiles covering this extent; empty: the whole raster")
        add(QgsProcessingParameterNumber(self.TILE_SIZE, "Tile size", number.Integer, 512, False, 16, 65536),
            "Width and height of a tile, in pixels")
        add(QgsProcessingParameterNumber(self.OVERLAP, "Tile overlap", number.Integer, 128, False, 0, 65535),
            "Pixels shared by neighbouring tiles; larger than the largest object")
        add(QgsProcessingParameterBand(self.BANDS, "Bands", None, self.INPUT, optional=True, allowMultiple=True),
            "Bands sent to the model; empty: all, or the first three")
        add(QgsProcessingParameterEnum(
            self.SCALE, "Rescale to 8 bits", ["No", "From each band's minimum/maximum", "From the range below"],
            defaultValue=0), "How pixel values are brought to 0-255 before encoding")
        add(QgsProcessingParameterRange(self.SCALE_RANGE, "Rescaling range", number.Double, optional=True),
            "Source values mapped to 0 and 255 when rescaling from a range")
        add(QgsProcessingParameterEnum(self.MERGE, "Merging", [label for _, label in MERGE_MODES], defaultValue=0),
            "What happens to an object found in two overlapping tiles")
        add(QgsProcessingParameterEnum(self.MATCH_METRIC, "Overlap measure", [label for _, label in MATCH_METRICS],
                                       defaultValue=0),
            "How the overlap of two boxes is measured when deciding whether they are one object")
        add(QgsProcessingParameterNumber(self.MERGE_THRESHOLD, "Merge threshold", number.Double, 0.5, False, 0.0, 1.0),
            "Two boxes whose overlap measure reaches this value are one object")
        add(QgsProcessingParameterNumber(self.MIN_SCORE, "Minimum score", number.Double, 0.0, False, 0.0, 1.0),
            "Detections scoring less are dropped")
        add(QgsProcessingParameterBoolean(self.CLASS_AGNOSTIC, "Merge across classes", False),
            "Also merge overlapping boxes of different classes")
        add(QgsProcessingParameterBoolean(self.RESUME, "Resume", False),
            "Finish an interrupted, cancelled or partly failed run on the same output, with the same input "
            "and options: completed tiles are not sent again")

        add(QgsProcessingParameterString(self.OUTPUT_BUCKET, "Output bucket", optional=True),
            "When the endpoint's configuration uses it", advanced=True)
        add(QgsProcessingParameterString(self.INPUT_PREFIX, "Input key prefix", optional=True),
            "Empty: async-inference/input/", advanced=True)
        add(QgsProcessingParameterString(self.OUTPUT_PREFIX, "Output key prefix", optional=True),
            "Empty: async-inference/output/", advanced=True)
        add(QgsProcessingParameterString(self.CUSTOM_ATTRIBUTES, "Custom attributes", optional=True),
            "Passed to the model with every tile, e.g. model_selection=ships", advanced=True)
        add(QgsProcessingParameterEnum(self.TILE_FORMAT, "Tile format", [label for _, label in TILE_FORMATS],
                                       defaultValue=0),
            "Image format of the tiles sent to the model", advanced=True)
        add(QgsProcessingParameterNumber(self.POLLING_INTERVAL, "Polling interval (s)", number.Double,
                                         None, True, 0.01),
            "Seconds between checks of a tile's result; empty: the utility's own schedule, which adapts to the "
            "endpoint in recent versions (otherwise 30 s, so a quick job waits that long)", advanced=True)
        add(QgsProcessingParameterNumber(self.MAX_POLLING_INTERVAL, "Maximum polling interval (s)", number.Double,
                                         None, True, 0.01),
            "Longest wait between two checks; empty: the utility's default", advanced=True)
        add(QgsProcessingParameterNumber(self.MAX_WAIT_TIME, "Maximum wait per tile (s)", number.Double,
                                         None, True, 1.0),
            "A tile without a result after this long fails; empty: the utility's default (3600)", advanced=True)
        add(QgsProcessingParameterCrs(self.T_SRS, "Output CRS", None, optional=True),
            "Empty: the input raster's CRS", advanced=True)
        add(QgsProcessingParameterNumber(self.CANCEL_GRACE, "Cancel: wait for tiles in flight (s)", number.Double,
                                         10.0, False, 0.0, 86400.0),
            "After Cancel, the tiles already sent get this long to finish; the rest is left for Resume",
            advanced=True)
        add(QgsProcessingParameterString(self.EXTRA_OPTIONS, "Additional options", optional=True),
            "Other gdal_asyncdetect options, e.g. -max-concurrent-jobs 20 (no credentials)", advanced=True)
        add(QgsProcessingParameterBoolean(self.LOAD_TILES, "Load the tile-status layer", True),
            "Also load the layer of tile footprints with their status", advanced=True)
        add(QgsProcessingParameterBoolean(self.DRY_RUN, "Check only", False),
            "Plan the tiles and check credentials and buckets; send nothing, write nothing", advanced=True)

        dest = QgsProcessingParameterVectorDestination(
            self.OUTPUT, "Detections", QgsProcessing.TypeVectorPolygon)
        # The utility writes files (and its journal beside or inside them);
        # a memory layer would lose both, so only file outputs are offered.
        dest.setSupportsNonFileBasedOutput(False)
        add(dest, "Any vector file format; the tile-status layer goes into the same GeoPackage, or beside "
                  "one-layer formats (ships.geojson and ships_tiles.geojson)")
        add(QgsProcessingParameterFileDestination(
            self.METRICS, "Run metrics", "JSON files (*.json)", optional=True, createByDefault=False),
            "JSON figures of the run, with every failed tile, its reason and inference id")

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
            return False, "The tile overlap ({}) must be smaller than the tile size ({}).".format(overlap, tile)
        if self.parameterAsEnum(parameters, self.SCALE, context) == 2:
            rng = self.parameterAsRange(parameters, self.SCALE_RANGE, context)
            if not rng or len(rng) != 2 or not all(math.isfinite(v) for v in rng) or rng[0] >= rng[1]:
                return False, "Rescaling from a range needs a range with minimum < maximum."
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
                "The input layer '{}' is read by QGIS's '{}' provider, not by GDAL: save it as a GeoTIFF "
                "(or any GDAL format) first.".format(layer.name(), provider))
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
            raise QgsProcessingException("Cannot replace the table(s) {} of '{}': {}.".format(
                ", ".join(names), path, str(e).rstrip(".")))

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
            raise QgsProcessingException("The SageMaker endpoint name is empty.")
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
                raise QgsProcessingException("Rescaling from a range needs a range with minimum < maximum.")
            args += ["-scale", repr(rng[0]), repr(rng[1])]
        fmt = TILE_FORMATS[self.parameterAsEnum(parameters, self.TILE_FORMAT, context)][0]
        if fmt != "PNG":
            opt("-tile-format", fmt)

        opt("-merge", MERGE_MODES[self.parameterAsEnum(parameters, self.MERGE, context)][0])
        opt("-match-metric", MATCH_METRICS[self.parameterAsEnum(parameters, self.MATCH_METRIC, context)][0])
        opt("-merge-threshold", repr(self.parameterAsDouble(parameters, self.MERGE_THRESHOLD, context)))
        opt("-min-score", repr(self.parameterAsDouble(parameters, self.MIN_SCORE, context)))
        if self.parameterAsBool(parameters, self.CLASS_AGNOSTIC, context):
            args.append("-class-agnostic")

        for name, flag in ((self.POLLING_INTERVAL, "-polling-interval"),
                           (self.MAX_POLLING_INTERVAL, "-max-polling-interval"),
                           (self.MAX_WAIT_TIME, "-max-wait-time")):
            if self._is_set(parameters, name):
                opt(flag, repr(self.parameterAsDouble(parameters, name, context)))

        # The output CRS defaults to the input's, as in GDAL's own tools
        # (a raster without a CRS leaves the choice to the utility).
        crs = self.parameterAsCrs(parameters, self.T_SRS, context)
        if not (self._is_set(parameters, self.T_SRS) and crs.isValid()):
            crs = layer.crs()
        if crs.isValid():
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
                    "Credentials are not accepted in the additional options (Processing keeps them in its "
                    "history): use an AWS profile, or AWS environment variables set before QGIS starts.")
            try:
                args += shlex.split(extra)
            except ValueError as e:
                raise QgsProcessingException("Cannot read the additional options: {}.".format(e))

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
        """Runs the utility; returns a RunOutcome.

        Everything that touches the feedback happens on this thread: two
        reader threads only move the pipes' bytes into a queue, and cancel is
        a small state machine driven from the same loop (SIGINT = stop
        submitting and drain, after `grace` s SIGINT again = stop now and leave
        the tiles in flight to Resume, STOP_TIMEOUT s later SIGKILL)."""
        proc = subprocess.Popen([binary] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, close_fds=True)
        q = queue.Queue()
        readers = [threading.Thread(target=_reader, args=(proc.stdout, "out", q), daemon=True),
                   threading.Thread(target=_reader, args=(proc.stderr, "err", q), daemon=True)]
        for t in readers:
            t.start()
        parser = TermProgressParser()
        outcome = RunOutcome()
        err_partial = ""
        open_pipes = 2
        stage = 0          # 0 running, 1 draining, 2 stopping, 3 killed
        deadline = None
        ok = False
        try:
            while open_pipes:
                if stage == 0 and feedback.isCanceled():
                    outcome.cancel_percent = parser.percent()
                    feedback.pushInfo(
                        "Cancel: no new tile is sent. The tiles already at the endpoint get up to {:g} s to "
                        "finish; whatever is still running then is left for Resume.".format(grace))
                    feedback.setProgressText("Cancelling: waiting for the tiles in flight")
                    self._signal(proc, signal.SIGINT)
                    stage, deadline = 1, time.monotonic() + grace
                elif stage in (1, 2) and time.monotonic() >= deadline and proc.poll() is None:
                    if stage == 1:
                        feedback.pushInfo("Cancel: stopped waiting; the tiles still in flight are left for Resume.")
                        self._signal(proc, signal.SIGINT)
                        stage, deadline = 2, time.monotonic() + self.STOP_TIMEOUT
                    else:
                        feedback.pushInfo("gdal_asyncdetect did not stop; killing it.")
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
                        self._stdout_line(line, outcome, feedback)
                    if parser.percent() != before:
                        feedback.setProgress(parser.percent())
                else:
                    err_partial += data
                    *lines, err_partial = err_partial.split("\n")
                    for line in lines:
                        self._stderr_line(line, outcome.errors, feedback)
            if err_partial:
                self._stderr_line(err_partial, outcome.errors, feedback)
            for line in parser.finish():
                self._stdout_line(line, outcome, feedback)
            ok = True
        finally:
            if not ok:
                self._kill(proc)  # never leave the utility running behind an error of ours
            proc.wait()
            for t in readers:
                t.join(timeout=5)
            proc.stdout.close()
            proc.stderr.close()
        outcome.status = proc.returncode
        outcome.cancelled = stage > 0
        return outcome

    @staticmethod
    def _signal(proc, sig):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass

    @staticmethod
    def _stdout_line(line, outcome, feedback):
        """A line of the run summary: logged in the dialog's words; the tile-status location kept."""
        if not line.strip():
            return
        if line.startswith("Tile status: "):
            outcome.tiles_location = line[len("Tile status: "):].strip()
        feedback.pushConsoleInfo(gui_words(line))

    @staticmethod
    def _stderr_line(line, errors, feedback):
        """An error or warning of the utility.  Errors are logged in full here and
        summarised once, in the failure message; warnings go to the log as warnings."""
        line = line.rstrip("\r")
        if not line.strip() or _SIGINT_LINES.match(line):
            return
        m = re.match(r"^gdal_asyncdetect: (ERROR|Warning) \d+: (.*)$", line)
        if m and m.group(1) == "ERROR":
            errors.append(m.group(2))
            feedback.pushConsoleInfo("Error: " + gui_words(m.group(2)))
        elif m:
            if hasattr(feedback, "pushWarning"):
                feedback.pushWarning(gui_words(m.group(2)))
            else:
                feedback.pushInfo("Warning: " + gui_words(m.group(2)))
        else:
            feedback.pushConsoleInfo(gui_words(line))

    def _prepare_files(self, parameters, context, path, metrics_path):
        """Every file-system step before the run, each failure explained in one sentence."""
        check_output_folder(path, "output")
        check_output_folder(metrics_path, "run metrics")
        if os.path.isdir(path):
            raise QgsProcessingException("The output '{}' is a folder: choose a file name.".format(path))
        if os.path.exists(metrics_path):
            try:
                os.remove(metrics_path)  # so a stale file is never read as this run's figures
            except OSError as e:
                raise QgsProcessingException("Cannot replace the run metrics file '{}': {}.".format(
                    metrics_path, e.strerror or e))

    def processAlgorithm(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.invalidRasterError(parameters, self.INPUT))
        dest = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        path, layer_name = self._destination(dest)
        if not path:
            raise QgsProcessingException("The output must be a file.")
        metrics_path = self.parameterAsFileOutput(parameters, self.METRICS, context)
        if not metrics_path:
            metrics_path = QgsProcessingUtils.generateTempFilename("gdal_asyncdetect_metrics.json")
        self._prepare_files(parameters, context, path, metrics_path)
        binary = find_binary()
        resume = self.parameterAsBool(parameters, self.RESUME, context)
        keep_file = bool(layer_name) and os.path.exists(path) and not resume
        args = self._build_args(parameters, context, feedback, layer, path, layer_name, metrics_path, keep_file)
        dry_run = "-dry-run" in args
        if keep_file and not dry_run:
            self._drop_tables(path, [layer_name, layer_name + "_tiles"], feedback)

        env = dict(os.environ)
        url = self.parameterAsString(parameters, self.ENDPOINT_URL, context).strip()
        if url:
            env["AWS_ENDPOINT_URL"] = url
            feedback.pushCommandInfo("AWS_ENDPOINT_URL=" + _URL_USERINFO.sub(r"\1***@", url))
        feedback.pushCommandInfo(redact_command([binary] + args))
        if not self._is_set(parameters, self.POLLING_INTERVAL) and not dry_run:
            feedback.pushInfo("Results are checked on gdal_asyncdetect's own polling schedule (see Polling interval "
                              "in the advanced parameters): a quick tile may wait for its next check.")

        grace = self.parameterAsDouble(parameters, self.CANCEL_GRACE, context)
        run = self._run(binary, args, env, grace, feedback)
        status = run.status

        metrics = {}
        try:
            with open(metrics_path, encoding="utf-8") as f:
                metrics = json.load(f)
        except (OSError, ValueError):
            pass
        tiles = metrics.get("tiles", {})

        if status < 0:
            raise QgsProcessingException("gdal_asyncdetect was stopped by signal {}{}".format(
                -status, (": " + one_sentence(run.errors[-1])) if run.errors else "."))
        if run.cancelled and status == EXIT_INTERRUPTED:
            journal = path if path.lower().endswith(".gpkg") else path + ".asdjournal.gpkg"
            feedback.pushInfo("The journal {} keeps every finished tile.".format(journal))
            raise QgsProcessingException(
                "Cancelled: {} of {} tiles finished; check Resume and run again with the same output to "
                "finish.".format(tiles.get("succeeded", 0) + tiles.get("failed", 0), tiles.get("planned", "the")))
        if status == EXIT_INTERRUPTED:
            raise QgsProcessingException(
                "gdal_asyncdetect was interrupted; check Resume and run again with the same output to finish.")
        if status not in (EXIT_OK, EXIT_PARTIAL):
            raise QgsProcessingException(one_sentence(run.errors[-1]) if run.errors else
                                         "gdal_asyncdetect failed (exit status {}) without a message.".format(status))

        if run.cancelled:
            # Every tile had been sent when Cancel came, and they all finished
            # within the wait: the run is complete, and says so.  The mark on
            # the feedback tells the dialog (DetectAlgorithmDialog) that the
            # task's "cancelled, so failed" verdict is not the run's.
            feedback.setProperty(COMPLETED_AFTER_CANCEL, True)
            feedback.pushInfo("Cancel came after the last tile had been sent and every tile finished: the run is "
                              "complete{}.".format(", with failed tiles" if status == EXIT_PARTIAL else ""))
        if status == EXIT_PARTIAL:
            msg = ("{} of {} tiles failed (their footprints and reasons are in the tile-status layer); the "
                   "detections of the other tiles are written. Check Resume and run again to retry only the "
                   "failed tiles.").format(tiles.get("failed", "some"), tiles.get("planned", "the"))
            if hasattr(feedback, "pushWarning"):
                feedback.pushWarning(msg)
            else:
                feedback.pushInfo("Warning: " + msg)

        if dry_run:
            # Nothing was written: there is no layer to load or return.
            if context.willLoadLayerOnCompletion(dest):
                layers = context.layersToLoadOnCompletion()
                layers.pop(dest, None)
                context.setLayersToLoadOnCompletion(layers)
            return {self.OUTPUT: None, self.TILES: None, self.EXIT_STATUS: status,
                    self.TILES_SUCCEEDED: None, self.TILES_FAILED: None, self.FEATURES: None}

        det_uri, tiles_uri = self._layer_uris(path, layer_name or "detections", args, run.tiles_location)
        load_tiles = self.parameterAsBool(parameters, self.LOAD_TILES, context)
        if run.cancelled and feedback.isCanceled():
            self._load_now(context, dest, det_uri, tiles_uri if load_tiles else None)
        else:
            self._load_on_completion(context, dest, det_uri, tiles_uri, load_tiles)
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
    def _layer_uris(path, det_name, args, tiles_location=None):
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
            # A one-layer format (GeoJSON, Shapefile, FlatGeobuf...): the tiles
            # are in the file the summary's "Tile status:" line names.
            tiles_uri = None
            if tiles_location and os.path.abspath(tiles_location) != os.path.abspath(path) \
                    and QgsVectorLayer(tiles_location, "probe", "ogr").isValid():
                tiles_uri = tiles_location
            return path, tiles_uri
        det_uri = "{}|layername={}".format(path, det_name)
        if not QgsVectorLayer(det_uri, "probe", "ogr").isValid():
            det_uri = path
        tiles_uri = "{}|layername={}".format(path, tiles_name)
        if det_uri == path or not QgsVectorLayer(tiles_uri, "probe", "ogr").isValid():
            tiles_uri = None
        return det_uri, tiles_uri

    def _load_on_completion(self, context, dest, det_uri, tiles_uri, load_tiles):
        """Makes Processing load the detections layer (not the file's first layer) and the tiles,
        each with the style the utility wrote, the tiles below the detections."""
        if not context.willLoadLayerOnCompletion(dest):
            return
        details = context.layerToLoadOnCompletionDetails(dest)
        layers = context.layersToLoadOnCompletion()
        layers.pop(dest, None)
        vector = QgsProcessingUtils.LayerHint.Vector
        shared = {}
        name = details.name or "Detections"
        det = QgsProcessingContext.LayerDetails(name, details.project, self.OUTPUT, vector)
        styler = LayerStyler("detections", shared)
        _STYLERS.append(styler)
        det.setPostProcessor(styler)
        layers[det_uri] = det
        if load_tiles and tiles_uri:
            tiles = QgsProcessingContext.LayerDetails(name + " tiles", details.project, self.TILES, vector)
            styler = LayerStyler("tiles", shared)
            _STYLERS.append(styler)
            tiles.setPostProcessor(styler)
            layers[tiles_uri] = tiles
        context.setLayersToLoadOnCompletion(layers)

    def _load_now(self, context, dest, det_uri, tiles_uri):
        """Loads the layers of a run that completed although the user pressed Cancel:
        Processing loads nothing for a cancelled algorithm."""
        if not context.willLoadLayerOnCompletion(dest):
            return
        details = context.layerToLoadOnCompletionDetails(dest)
        project = details.project or context.project() or QgsProject.instance()
        name = details.name or "Detections"
        layers = [("detections", det_uri, name)]
        if tiles_uri:
            layers.insert(0, ("tiles", tiles_uri, name + " tiles"))
        layers_to_load = context.layersToLoadOnCompletion()
        layers_to_load.pop(dest, None)
        context.setLayersToLoadOnCompletion(layers_to_load)
        main_thread_loader().request.emit((project, layers))


class RunOutcome:
    """What one run of the utility left: exit status, error lines, whether it was cancelled."""

    def __init__(self):
        self.status = None
        self.errors = []
        self.cancelled = False
        self.cancel_percent = None
        self.tiles_location = None
