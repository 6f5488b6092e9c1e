"""Runs CPython's own ``Lib/test/test_sqlite3`` against the stdlib ``sqlite3`` or litepool.

    python tests/python/cpython_suite.py stdlib|litepool [--floor N] [--verbose] [--json PATH]
        [TEST_ID_PART ...]

``litepool`` runs the suite with ``sys.modules['sqlite3']`` (and ``sqlite3.dbapi2``,
``sqlite3.dump``) replaced by litepool's modules before the suite is imported, so its
``import sqlite3 as sqlite`` gets litepool; the child interpreters some tests start run
``litepool.install()`` through the launcher's ``sitecustomize`` (``python -m litepool run``). Prints the counts
and one line per failure, error and skip; with ``--floor N``, exits 1 when fewer than N
tests pass (the floor is for the suite of Python 3.11, whose counts python/README.md
quotes; on another version it is not applied). The suite runs in a temporary directory (its files are named relative to the
working directory).
"""

import argparse
import json
import os
import sys
import tempfile
import unittest


def swap_in_litepool():
    import litepool
    import litepool.dbapi2
    from litepool.__main__ import command_env
    # Child interpreters (a test starts one) run litepool.install() at start.
    os.environ.update(command_env(os.environ))
    sys.modules["sqlite3"] = litepool
    sys.modules["sqlite3.dbapi2"] = litepool.dbapi2
    sys.modules["sqlite3.dump"] = litepool.dump


def first_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1].strip() if lines else ""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("target", choices=["stdlib", "litepool"])
    parser.add_argument("--floor", type=int, default=0)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("pattern", nargs="*", help="only tests whose id contains one of these")
    args = parser.parse_intermixed_args()

    if args.target == "litepool":
        swap_in_litepool()
    try:
        import test.test_sqlite3 as suite_pkg
    except ImportError as e:
        sys.exit(f"CPython's test package is missing ({e}); on Debian/Ubuntu install "
                 f"libpython{sys.version_info[0]}.{sys.version_info[1]}-testsuite")

    workdir = tempfile.mkdtemp(prefix="test_sqlite3-")
    os.chdir(workdir)
    loader = unittest.TestLoader()
    suite = suite_pkg.load_tests(loader, unittest.TestSuite(), None)
    if args.pattern:
        def keep(s):
            out = unittest.TestSuite()
            for t in s:
                if isinstance(t, unittest.TestSuite):
                    out.addTests(keep(t))
                elif any(p in t.id() for p in args.pattern):
                    out.addTest(t)
            return out
        suite = keep(suite)
    runner = unittest.TextTestRunner(verbosity=2 if args.verbose else 0,
                                     stream=sys.stderr if args.verbose else open(os.devnull, "w"))
    result = runner.run(suite)

    passed = (result.testsRun - len(result.failures) - len(result.errors)
              - len(result.skipped) - len(result.unexpectedSuccesses))
    report = {
        "target": args.target,
        "python": "%d.%d.%d" % sys.version_info[:3],
        "sqlite_version": sys.modules["sqlite3"].sqlite_version,
        "run": result.testsRun,
        "passed": passed,
        "failures": sorted((t.id(), first_line(tb)) for t, tb in result.failures),
        "errors": sorted((t.id(), first_line(tb)) for t, tb in result.errors),
        "skipped": sorted((t.id(), reason) for t, reason in result.skipped),
    }
    for kind in ("failures", "errors", "skipped"):
        for test_id, why in report[kind]:
            print(f"{kind[:-1] if kind != 'skipped' else 'skip'}: {test_id}: {why}")
    print(f"test_sqlite3 on {args.target} (Python {report['python']}, SQLite "
          f"{report['sqlite_version']}): {passed} passed of {result.testsRun} run, "
          f"{len(result.failures)} failures, {len(result.errors)} errors, "
          f"{len(result.skipped)} skipped")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if sys.version_info[:2] != (3, 11):
        print(f"(the floor is for Python 3.11's suite; not applied on {report['python']})")
    elif passed < args.floor:
        print(f"FAIL: {passed} passed, below the floor of {args.floor}")
        sys.exit(1)


if __name__ == "__main__":
    main()
