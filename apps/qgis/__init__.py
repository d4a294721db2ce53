# -*- coding: utf-8 -*-
"""
The QGIS plugin entry point: apps/qgis/ copied (or linked) as
<profile>/python/plugins/gdal_asyncdetect/ registers the "asyncdetect"
Processing provider.  metadata.txt says hasProcessingProvider=yes, so
qgis_process loads it too once the plugin is enabled.
"""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from .gdal_asyncdetect_plugin import GdalAsyncDetectPlugin
    return GdalAsyncDetectPlugin(iface)
