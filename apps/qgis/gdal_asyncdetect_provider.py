# -*- coding: utf-8 -*-
"""
gdal_asyncdetect_provider.py: a Processing provider ("asyncdetect") holding the
gdal_asyncdetect algorithm, for installing apps/qgis/ as a QGIS plugin.

The provider adds one Processing setting, the path of the gdal_asyncdetect
executable (Settings > Options > Processing > Providers > gdal_asyncdetect),
stored under the same QgsSettings key the algorithm reads, so a path set here
also serves the algorithm when it is installed as a user script.
"""

from qgis.core import QgsProcessingProvider

try:  # inside the plugin package
    from .gdal_asyncdetect_algorithm import SETTING_BINARY, GdalAsyncDetectAlgorithm
except ImportError:  # apps/qgis/ on sys.path (tests, user scripts)
    from gdal_asyncdetect_algorithm import SETTING_BINARY, GdalAsyncDetectAlgorithm


class GdalAsyncDetectProvider(QgsProcessingProvider):

    def id(self):
        return "asyncdetect"

    def name(self):
        return "gdal_asyncdetect"

    def longName(self):
        return "gdal_asyncdetect (SageMaker asynchronous inference)"

    def load(self):
        # The settings dialog belongs to the processing plugin; without it
        # (a bare QgsApplication) the algorithm still reads the QgsSettings key.
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting
            ProcessingConfig.settingIcons[self.name()] = self.icon()
            ProcessingConfig.addSetting(Setting(
                self.name(), SETTING_BINARY, "gdal_asyncdetect executable (empty: $GDAL_ASYNCDETECT_BIN, then PATH)",
                "", valuetype=Setting.FILE))
            ProcessingConfig.readSettings()
        except ImportError:
            pass
        self.refreshAlgorithms()
        return True

    def unload(self):
        try:
            from processing.core.ProcessingConfig import ProcessingConfig
            ProcessingConfig.removeSetting(SETTING_BINARY)
        except (ImportError, KeyError):
            pass

    def loadAlgorithms(self):
        self.addAlgorithm(GdalAsyncDetectAlgorithm())
