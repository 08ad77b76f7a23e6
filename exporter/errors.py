"""The export service's exceptions: each docstring is the message an operator reads."""
from __future__ import annotations

import errno

from influencers.core.errors import InfluencersError


class ExporterError(InfluencersError):
    """The export service cannot go on."""


class ExportPathError(ExporterError):
    """An export file path would leave the export directory."""


class ExportCountMismatch(ExporterError):
    """A batch file would not hold exactly the rows its batch recorded; it was not published."""


class ExportDiskFault(ExporterError):
    """An export file could not be written (no space, file too large, not a directory, I/O error);
    its batch stays reserved and is published with the same rows under the same name later."""

    def __init__(self, path: object, error: OSError) -> None:
        self.path, self.error = path, error
        self.code = errno.errorcode.get(error.errno or 0, "")  # "ENOSPC", "EFBIG", "ENOTDIR", "EIO", …
        what = f"{error.strerror or error} ({self.code})" if self.code else str(error)
        where = f" at {error.filename}" if error.filename and str(error.filename) != str(path) else ""
        super().__init__(f"cannot write {path}: {what}{where}")
