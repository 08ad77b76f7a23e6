"""The export service's exceptions: each docstring is the message an operator reads."""
from __future__ import annotations

from influencers.core.errors import InfluencersError


class ExporterError(InfluencersError):
    """The export service cannot go on."""


class ExportPathError(ExporterError):
    """An export file path would leave the export directory."""


class ExportCountMismatch(ExporterError):
    """A batch file would not hold exactly the rows its batch recorded; it was not published."""
