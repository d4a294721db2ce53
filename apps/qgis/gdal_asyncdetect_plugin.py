# -*- coding: utf-8 -*-
"""
gdal_asyncdetect_plugin.py: the plugin object; it only registers and removes
the Processing provider (initProcessing is what qgis_process calls too).
"""

from qgis.core import QgsApplication

from .gdal_asyncdetect_provider import GdalAsyncDetectProvider


class GdalAsyncDetectPlugin:

    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        self.provider = GdalAsyncDetectProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()

    def unload(self):
        if self.provider:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
