#!/usr/bin/env python
"""Regenerates the generated parts of docs/ (`make docs`); `--check` only reports stale files.

The generators are the package scripts/gendocs (one module per generated document); this file
is the command, and the name the generated files point back to.
"""

from __future__ import annotations

import sys

from gendocs.__main__ import main  # scripts/ is on sys.path: it is this file's folder

if __name__ == "__main__":
    sys.exit(main())
