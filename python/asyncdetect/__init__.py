"""
asyncdetect: gdal_asyncdetect for Python pipelines, in the spirit of gdal.Translate.

    from osgeo import gdal
    import asyncdetect

    ds = gdal.Open("scene.tif")
    result = asyncdetect.Detect("ships.gpkg", ds,
                                options=["-endpoint", "ship-detector", "-input-bucket", "my-bucket"],
                                callback=gdal.TermProgress_nocb)
    print(result.status, result.features_kept, result.tiles_failed)

Why ctypes over the installed C library: nothing to compile for the user (no
SWIG, no compiler, no wheel per Python version), and the run happens in the
caller's process on the caller's dataset: `src` may be an osgeo.gdal.Dataset
that exists only in this process (a /vsimem/ file, a VRT or a MEM dataset
built on the fly), whose C handle is handed to asd_detect().  This works
because libasyncdetect and the osgeo bindings load the same libgdal.  The
library also reads tiles through handles it opens by the dataset's name; a
dataset without a usable name (MEM, a VRT named "") is first given one in
/vsimem/ (a VRT as its XML, without copying pixels; anything else as a
GeoTIFF copy in memory), unlinked after the run.

The interface follows the osgeo.gdal utility functions:
  * `options` is the utility's argument list (a list, or one string split
    like a shell line): every gdal_asyncdetect option works, and
    `gdal_asyncdetect --help` documents them;
  * `callback(complete, message, user_data)` receives the progress (0..1)
    and returns a true value (or None) to go on; a false value stops
    submitting new tiles and drains the ones in flight, and the result's
    status is then INTERRUPTED (run again with "-resume" to finish);
    a KeyboardInterrupt raised while the callback runs does the same;
  * errors raise asyncdetect.Error with the library's one-line message;
    warnings go to the `warnings` module.

Detect() returns a Result with the run's figures (the C asd_detect_summary):
a partial run (some tiles failed, status PARTIAL) is a result, not an
exception, because its output is written and a pipeline decides what to do.

The library is found, in this order, through $ASD_LIBRARY (a path), the path
recorded at installation (_libpath.py), or the system's search path.
"""

import ctypes
import ctypes.util
import os
import shlex
import threading
import warnings

__all__ = ["Detect", "Result", "Error", "OK", "ERROR", "PARTIAL", "INTERRUPTED", "usage"]

# asd_detect_status (asd_app.h).
OK, ERROR, PARTIAL, INTERRUPTED = 0, 1, 2, 3

_CE_WARNING, _CE_FAILURE, _CE_FATAL = 2, 3, 4
_GDAL_OF_RASTER, _GDAL_OF_VERBOSE_ERROR = 0x02, 0x40


class Error(RuntimeError):
    """A failed run (status ERROR) or a usage error: the message is the library's one line."""

    def __init__(self, message, usage_error=False):
        super().__init__(message)
        self.usage_error = usage_error


class _ImageSummary(ctypes.Structure):
    """asd_detect_image_summary of asd_app.h (one image of a run over several)."""
    _fields_ = [
        ("source", ctypes.c_char * 1024),
        ("tiles_planned", ctypes.c_int),
        ("tiles_skipped", ctypes.c_int),
        ("tiles_succeeded", ctypes.c_int),
        ("tiles_failed", ctypes.c_int),
        ("tiles_not_run", ctypes.c_int),
        ("features_kept", ctypes.c_longlong),
    ]


class _Summary(ctypes.Structure):
    """asd_detect_summary of asd_app.h, field for field (keep in step with the header)."""
    _fields_ = [
        ("tiles_planned", ctypes.c_int),
        ("tiles_skipped", ctypes.c_int),
        ("tiles_resumed", ctypes.c_int),
        ("tiles_succeeded", ctypes.c_int),
        ("tiles_failed", ctypes.c_int),
        ("tiles_not_run", ctypes.c_int),
        ("features_received", ctypes.c_longlong),
        ("features_kept", ctypes.c_longlong),
        ("elapsed_seconds", ctypes.c_double),
        ("tiles_per_second", ctypes.c_double),
        ("s3_calls", ctypes.c_longlong),
        ("endpoint_calls", ctypes.c_longlong),
        ("retries", ctypes.c_longlong),
        ("polling_attempts", ctypes.c_longlong),
        ("dry_run", ctypes.c_int),
        ("interrupted", ctypes.c_int),
        ("tiles_location", ctypes.c_char * 1024),
        ("bytes_uploaded", ctypes.c_longlong),
        ("bytes_per_tile", ctypes.c_double),
        ("encode_cpu_ms_per_tile", ctypes.c_double),
        ("polls_per_job", ctypes.c_double),
        ("adaptive_polling", ctypes.c_int),
        ("bound", ctypes.c_char * 32),
        ("bound_detail", ctypes.c_char * 512),
        ("tiles_read_failed", ctypes.c_int),
        ("pixels", ctypes.c_char * 640),
        ("georeferencing", ctypes.c_char * 256),
        ("detections_not_georeferenced", ctypes.c_longlong),
        ("detections_trimmed", ctypes.c_longlong),
        ("tiles_not_georeferenced", ctypes.c_longlong),
        ("tiles_trimmed", ctypes.c_longlong),
        ("georef_why", ctypes.c_char * 160),
        # Added by issue 15: a run over several images (asd_detect_many) has a per-image list.
        ("images", ctypes.c_int),
        ("image_list", ctypes.POINTER(_ImageSummary)),
        # -shard K/N (features written unmerged), and -cleanup-pending alone.
        ("shard_k", ctypes.c_int),
        ("shard_n", ctypes.c_int),
        ("cleanup_only", ctypes.c_int),
        ("pending_deleted", ctypes.c_longlong),
        ("pending_left", ctypes.c_longlong),
        # Added by issue 15 part 3 (a shaped uplink).
        ("upload_link_busy", ctypes.c_double),
        ("upload_mb_s_while_sending", ctypes.c_double),
    ]


class Result:
    """The figures of one run (asd_detect_summary) and its status."""

    def __init__(self, status, summary, text):
        self.status = status
        for name, _ in _Summary._fields_:
            if name == "image_list":
                continue
            value = getattr(summary, name)
            if name in ("tiles_location", "bound", "bound_detail"):
                value = value.decode("utf-8", "replace")
            elif name in ("dry_run", "interrupted", "adaptive_polling"):
                value = bool(value)
            setattr(self, name, value)
        # One dict per image of a run over several (Detect with a list), else [].
        self.image_list = []
        for k in range(summary.images if summary.image_list else 0):
            im = summary.image_list[k]
            self.image_list.append({name: (getattr(im, name).decode("utf-8", "replace") if name == "source"
                                           else getattr(im, name)) for name, _ in _ImageSummary._fields_})
        self.text = text  # the summary the utility prints

    @property
    def ok(self):
        return self.status == OK

    def __repr__(self):
        return "<asyncdetect.Result status={} tiles {}/{} succeeded, {} failed, {} features>".format(
            self.status, self.tiles_succeeded, self.tiles_planned, self.tiles_failed, self.features_kept)


_PROGRESS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_double, ctypes.c_char_p, ctypes.c_void_p)
_ERROR_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_char_p)

_lib = None
_gdal = None
_lock = threading.Lock()


def _library_path():
    env = os.environ.get("ASD_LIBRARY")
    if env:
        return env
    try:
        from . import _libpath  # written by the installation
        if os.path.exists(_libpath.LIBRARY):
            return _libpath.LIBRARY
    except ImportError:
        pass
    return ctypes.util.find_library("asyncdetect") or "libasyncdetect.so.0"


def _load():
    global _lib, _gdal
    with _lock:
        if _lib is not None:
            return _lib, _gdal
        path = _library_path()
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            raise ImportError("asyncdetect: cannot load the library '{}' ({}); install gdal_asyncdetect or set "
                              "$ASD_LIBRARY to libasyncdetect.so".format(path, e)) from None
        # The summary is a struct the C side fills: a field added there and not
        # in _Summary would make every run write past this binding's struct.
        lib.asd_detect_summary_size.restype = ctypes.c_size_t
        lib.asd_detect_summary_size.argtypes = []
        if lib.asd_detect_summary_size() != ctypes.sizeof(_Summary):
            raise ImportError("asyncdetect: the library '{}' has a summary of {} bytes, this binding {}: the binding "
                              "and the library are from different versions".format(
                                  path, lib.asd_detect_summary_size(), ctypes.sizeof(_Summary)))
        lib.asd_detect_options_new.restype = ctypes.c_void_p
        lib.asd_detect_options_new.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p]
        lib.asd_detect_options_free.argtypes = [ctypes.c_void_p]
        lib.asd_detect_options_set_progress.argtypes = [ctypes.c_void_p, _PROGRESS, ctypes.c_void_p]
        lib.asd_detect.restype = ctypes.c_int
        lib.asd_detect.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(_Summary),
                                   ctypes.POINTER(ctypes.c_int)]
        lib.asd_detect_many.restype = ctypes.c_int
        lib.asd_detect_many.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p,
                                        ctypes.POINTER(_Summary), ctypes.POINTER(ctypes.c_int)]
        lib.asd_detect_summary_clear.argtypes = [ctypes.POINTER(_Summary)]
        lib.asd_detect_summary_format.restype = ctypes.c_void_p
        lib.asd_detect_summary_format.argtypes = [ctypes.POINTER(_Summary)]
        lib.asd_detect_usage.restype = ctypes.c_char_p
        # GDAL, as the library loaded it (the same libgdal as osgeo.gdal's).
        gdal = ctypes.CDLL(ctypes.util.find_library("gdal") or "libgdal.so", mode=ctypes.RTLD_GLOBAL)
        gdal.GDALAllRegister.argtypes = []
        gdal.GDALOpenEx.restype = ctypes.c_void_p
        gdal.GDALOpenEx.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
                                    ctypes.c_void_p]
        gdal.GDALClose.argtypes = [ctypes.c_void_p]
        gdal.CPLPushErrorHandler.argtypes = [_ERROR_HANDLER]
        gdal.CPLPopErrorHandler.argtypes = []
        gdal.VSIFree.argtypes = [ctypes.c_void_p]
        _lib, _gdal = lib, gdal
        return lib, gdal


def usage():
    """The utility's --help text: every option Detect() accepts."""
    lib, _ = _load()
    return lib.asd_detect_usage().decode("utf-8", "replace")


def _dataset_handle(ds):
    """The GDALDatasetH of an osgeo.gdal.Dataset (its SWIG pointer)."""
    this = getattr(ds, "this", None)
    if this is None or not hasattr(ds, "GetDescription"):
        raise TypeError("src must be a path or an osgeo.gdal.Dataset, not {}".format(type(ds).__name__))
    return int(this)


def _reopenable(ds):
    """src itself, or an equivalent dataset the library can open again by name.

    The library reads tiles in parallel through several handles of the source,
    opened by its name.  A dataset without a usable name (a MEM dataset, a VRT
    built with an empty name) is given one in /vsimem/: a VRT as its own XML
    (no pixel copied), anything else as a GeoTIFF copy.  Returns (dataset,
    /vsimem/ file to unlink afterwards or None)."""
    from osgeo import gdal
    driver = ds.GetDriver().ShortName if ds.GetDriver() else ""
    if ds.GetDescription() and driver != "MEM":
        return ds, None
    name = "/vsimem/asyncdetect_{}_{}".format(os.getpid(), id(ds))
    if driver == "VRT":
        name += ".vrt"
        gdal.FileFromMemBuffer(name, ds.GetMetadata("xml:VRT")[0].encode("utf-8"))
        return gdal.Open(name), name
    name += ".tif"
    copy = gdal.GetDriverByName("GTiff").CreateCopy(name, ds, options=["TILED=YES"])
    copy.FlushCache()  # the library's own handles read the file, not this one's cache
    return copy, name


def Detect(dst, src, options=None, callback=None, callback_data=None):  # noqa: N802 (GDAL's naming)
    """Runs gdal_asyncdetect on src (a path or an osgeo.gdal.Dataset) into dst (a vector path).

    src may also be a list of paths: one run over every image (asd_detect_many), one output;
    Result.image_list then has one dict per image.

    options: the utility's arguments (list or string), e.g. ["-endpoint", "e", "-input-bucket", "b"].
    callback: callback(complete, message, user_data) -> truthy to go on (gdal.TermProgress_nocb works).
    Returns a Result; raises Error when the run fails (status ERROR)."""
    lib, gdal = _load()
    if isinstance(options, str):
        options = shlex.split(options)
    args = [os.fsencode(a) if isinstance(a, (str, os.PathLike)) else bytes(a) for a in (options or [])]
    argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)

    messages = []  # (class, text) of every CPLError during the call

    @_ERROR_HANDLER
    def on_error(err_class, _num, msg):
        messages.append((err_class, (msg or b"").decode("utf-8", "replace")))

    cancelled = []

    @_PROGRESS
    def on_progress(complete, message, _data):
        if callback is None:
            return 1
        try:
            go_on = callback(complete, (message or b"").decode("utf-8", "replace"), callback_data)
        except KeyboardInterrupt:
            cancelled.append(True)
            return 0
        except Exception as e:  # noqa: BLE001 (reported, then the run drains)
            messages.append((_CE_FAILURE, "progress callback raised {}: {}".format(type(e).__name__, e)))
            return 0
        return 1 if go_on is None or go_on else 0

    gdal.CPLPushErrorHandler(on_error)
    opened = temporary = None
    try:
        opts = lib.asd_detect_options_new(argv, None)
        if not opts:
            raise Error(_last_failure(messages) or "invalid options", usage_error=True)
        try:
            lib.asd_detect_options_set_progress(opts, on_progress, None)
            summary = _Summary()
            usage_error = ctypes.c_int(0)
            if isinstance(src, (list, tuple)):
                gdal.GDALAllRegister()
                names = [os.fsencode(s) for s in src]
                array = (ctypes.c_char_p * (len(names) + 1))(*names, None)
                status = lib.asd_detect_many(os.fsencode(dst), array, opts, ctypes.byref(summary),
                                             ctypes.byref(usage_error))
            elif isinstance(src, (str, bytes, os.PathLike)):
                gdal.GDALAllRegister()
                opened = gdal.GDALOpenEx(os.fsencode(src), _GDAL_OF_RASTER | _GDAL_OF_VERBOSE_ERROR,
                                         None, None, None)
                if not opened:
                    raise Error(_last_failure(messages) or "cannot open '{}'".format(os.fsdecode(src)))
                handle = opened
            else:
                _dataset_handle(src)  # a TypeError before any work when src is neither
                src, temporary = _reopenable(src)
                handle = _dataset_handle(src)
            if not isinstance(src, (list, tuple)):
                status = lib.asd_detect(os.fsencode(dst), handle, opts, ctypes.byref(summary),
                                        ctypes.byref(usage_error))
        finally:
            lib.asd_detect_options_free(opts)
    finally:
        if opened:
            gdal.GDALClose(opened)
        gdal.CPLPopErrorHandler()
        if temporary:
            from osgeo import gdal as osgeo_gdal
            src = None
            osgeo_gdal.Unlink(temporary)

    for err_class, text in messages:
        if err_class == _CE_WARNING:
            warnings.warn(text, RuntimeWarning, stacklevel=2)
    if status == ERROR:
        lib.asd_detect_summary_clear(ctypes.byref(summary))
        raise Error(_last_failure(messages) or "gdal_asyncdetect failed", usage_error=bool(usage_error.value))
    raw = lib.asd_detect_summary_format(ctypes.byref(summary))
    text = ctypes.string_at(raw).decode("utf-8", "replace") if raw else ""
    if raw:
        gdal.VSIFree(raw)
    result = Result(status, summary, text)
    lib.asd_detect_summary_clear(ctypes.byref(summary))
    if cancelled:
        raise KeyboardInterrupt  # after the drain: the journal is intact, "-resume" finishes
    return result


def _last_failure(messages):
    failures = [text for err_class, text in messages if err_class >= _CE_FAILURE]
    return failures[-1] if failures else None
