"""Run at interpreter start by ``python -m litepool run`` (this directory is put first on
``PYTHONPATH``, so every Python process the program starts runs it too): applies
``litepool.install()``, then runs the ``sitecustomize`` this one shadows, if any."""

import importlib
import os
import sys


def _install():
    if os.environ.get("LITEPOOL_INSTALL") != "1":
        return
    try:
        import litepool
        litepool.install()
    except Exception as e:  # an interpreter without litepool: run the program unchanged
        print(f"litepool run: install() failed in {sys.executable}: {e!r}", file=sys.stderr)


def _run_shadowed():
    here = os.path.dirname(os.path.abspath(__file__))
    this = sys.modules.get(__name__)
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        del sys.modules[__name__]
        importlib.import_module("sitecustomize")
    except ModuleNotFoundError as e:
        if e.name != "sitecustomize":
            raise
    finally:
        sys.path[:] = saved
        sys.modules.setdefault(__name__, this)


_install()
_run_shadowed()
