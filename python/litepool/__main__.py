"""``python -m litepool run [--] COMMAND ...`` (also the ``litepool-run`` console script):
runs ``COMMAND`` with ``litepool.install()`` applied at the start of every Python
interpreter it starts, itself included (python/README.md, "Zero-code adoption")."""

import os
import sys

USAGE = "usage: python -m litepool run [--] COMMAND [ARGS...]"


def command_env(environ):
    """The environment a command runs with: the ``sitecustomize`` directory first on
    ``PYTHONPATH``, and ``LITEPOOL_INSTALL=1``."""
    boot = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_autoinstall")
    paths = [boot] + [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(environ)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["LITEPOOL_INSTALL"] = "1"
    return env


def run(argv):
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        os.execvpe(argv[0], argv, command_env(os.environ))
    except OSError as e:
        print(f"litepool run: {argv[0]}: {e.strerror}", file=sys.stderr)
        return 127


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "run":
        print(USAGE, file=sys.stderr)
        return 2
    return run(argv[1:])


def run_main():
    """The ``litepool-run`` console script: ``litepool-run COMMAND ...``."""
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
