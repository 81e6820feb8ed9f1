"""The command that makes the OAT chapter's results: ``python -m dlib.oat_study --help``.

The work is :func:`dlib.methods.oat.run`; this module only gives it a command line outside the
``dlib.methods`` package (running a module of an imported package with ``-m`` makes Python warn
that the module was imported twice).
"""

from __future__ import annotations

from dlib.methods.oat import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
