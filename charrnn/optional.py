"""Optional packages: a feature that needs one imports it through
:func:`require`, so a missing package is one line that says how to install
it, under the name this project has on the package index.

On the package index, the import name ``charrnn`` belongs to an unrelated
older project; every install hint names :data:`DISTRIBUTION` and the extra
that brings the package.
"""

from __future__ import annotations

import importlib

from .errors import MissingDependencyError

DISTRIBUTION = "charrnn-course"  # the name on the package index; the import name is ``charrnn``


def require(module: str, extra: str, purpose: str):
    """Import ``module`` for ``purpose``, or raise
    :class:`MissingDependencyError` naming the package index extra that
    installs it (``pip install 'charrnn-course[extra]'``). A module that is
    installed but fails to import names what it is missing instead."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        missing = e.name or module
        if missing.split(".")[0] == module.split(".")[0]:
            raise MissingDependencyError(f"{purpose} needs {module}, which is not installed: "
                                         f"pip install '{DISTRIBUTION}[{extra}]'") from None
        raise MissingDependencyError(f"{purpose} needs {module}, which is installed but cannot be imported: "
                                     f"it needs {missing} (pip install {missing})") from None
