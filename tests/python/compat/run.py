"""``make compat`` (Python part): other people's test suites on the stdlib ``sqlite3`` and on
litepool, side by side.

    python tests/python/compat/run.py cpython|django|sqlalchemy --work DIR

- ``cpython``: CPython's ``Lib/test/test_sqlite3`` (tests/python/cpython_suite.py), on the
  stdlib and with ``sqlite3`` swapped for litepool.
- ``django``: Django's own ``tests/runtests.py`` for the apps in ``DJANGO_APPS``, with its
  default SQLite settings (in-memory databases) and with file databases
  (tests/python/compat/django_file_settings.py); litepool through ``install()`` alone, applied
  by ``python -m litepool run``.
- ``sqlalchemy``: SQLAlchemy's sqlite dialect, engine and ORM transaction tests, with
  ``sqlite://`` and with a file database, litepool again through ``python -m litepool run``.

The suites come from the sdists in ``DIR`` (mk/compat.mk downloads them). Each run's output is
kept in ``DIR/logs``; the table gives the counts each runner reports.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)

DJANGO_APPS = ("basic transactions transaction_hooks backends schema model_fields expressions "
               "aggregation queries bulk_create get_or_create db_functions migrations "
               "select_for_update").split()
SQLALCHEMY_TESTS = ["test/dialect/sqlite", "test/engine", "test/orm/test_transaction.py"]


def launcher(on_litepool):
    return [sys.executable, "-m", "litepool", "run", "--"] if on_litepool else []


def run(cmd, log, cwd=None, env=None, timeout=3600):
    with open(log, "w") as out:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=timeout)
    with open(log) as f:
        return proc.returncode, f.read()


def count(pattern, text):
    m = re.search(pattern, text)
    return int(m.group(1)) if m else 0


def did_not_run(text):
    """The status of a run that reported no counts, with the last exception it printed."""
    errors = re.findall(r"^\S*(?:Error|Exception): .*$", text, re.MULTILINE)
    return {"status": "did not run" + (f" ({errors[-1][:100]})" if errors else "")}


def unittest_counts(text):
    """Counts from a unittest runner's last lines (``Ran N tests`` / ``FAILED (...)``)."""
    ran = count(r"Ran (\d+) tests?", text)
    failures = count(r"(?<!expected )failures=(\d+)", text)
    errors = count(r"errors=(\d+)", text)
    skipped = count(r"skipped=(\d+)", text)
    expected = count(r"expected failures=(\d+)", text)
    if not ran:
        return did_not_run(text)
    return {"run": ran, "passed": ran - failures - errors - skipped - expected,
            "failures": failures, "errors": errors, "skipped": skipped}


def pytest_counts(text):
    """Counts from pytest's summary line."""
    tail = text.strip().splitlines()[-1] if text.strip() else ""
    got = {k: count(rf"(\d+) {k}", tail) for k in ("passed", "failed", "errors?", "skipped")}
    if not any(got.values()):
        return did_not_run(text)
    return {"passed": got["passed"], "failures": got["failed"], "errors": got["errors?"],
            "skipped": got["skipped"]}


def cpython(work, logs):
    rows = []
    for target in ("stdlib", "litepool"):
        report = os.path.join(logs, f"cpython-{target}.json")
        run([sys.executable, os.path.join(TESTS, "cpython_suite.py"), target, "--json", report],
            os.path.join(logs, f"cpython-{target}.log"))
        with open(report) as f:
            r = json.load(f)
        rows.append((f"CPython test_sqlite3 ({r['python']})", target,
                     {"run": r["run"], "passed": r["passed"], "failures": len(r["failures"]),
                      "errors": len(r["errors"]), "skipped": len(r["skipped"])}))
    return rows


def django(work, logs):
    tests = os.path.join(work, "django", "tests")
    rows = []
    for settings, label in (("test_sqlite", "default settings (in-memory)"),
                            ("django_file_settings", "file databases")):
        for on_litepool in (False, True):
            target = "litepool install()" if on_litepool else "stdlib"
            dbdir = tempfile.mkdtemp(prefix="django-compat-")
            env = dict(os.environ, DJANGO_COMPAT_DB_DIR=dbdir,
                       PYTHONPATH=os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")])))
            cmd = launcher(on_litepool) + [sys.executable, "runtests.py", "--settings", settings,
                                           "--parallel", "1", "--noinput"] + DJANGO_APPS
            log = os.path.join(logs, f"django-{settings}-{'litepool' if on_litepool else 'stdlib'}.log")
            _, text = run(cmd, log, cwd=tests, env=env)
            shutil.rmtree(dbdir, ignore_errors=True)
            rows.append((f"Django 5.2, {label}", target, unittest_counts(text)))
    return rows


def sqlalchemy(work, logs):
    root = os.path.join(work, "sqlalchemy")
    rows = []
    for label in ("sqlite://", "file database"):
        for on_litepool in (False, True):
            target = "litepool install()" if on_litepool else "stdlib"
            dbdir = tempfile.mkdtemp(prefix="sqlalchemy-compat-")
            uri = [] if label == "sqlite://" else ["--dburi", f"sqlite:///{dbdir}/test.db"]
            cmd = launcher(on_litepool) + [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                                           "-q", "--maxfail=100000"] + SQLALCHEMY_TESTS + uri
            log = os.path.join(logs, f"sqlalchemy-{'memory' if not uri else 'file'}-"
                                     f"{'litepool' if on_litepool else 'stdlib'}.log")
            _, text = run(cmd, log, cwd=root)
            shutil.rmtree(dbdir, ignore_errors=True)
            rows.append((f"SQLAlchemy 2.0, {label}", target, pytest_counts(text)))
    return rows


def table(rows):
    lines = ["| suite | driver | passed | failures | errors | skipped |",
             "|---|---|---:|---:|---:|---:|"]
    for suite, target, c in rows:
        if "status" in c:
            lines.append(f"| {suite} | {target} | {c['status']} | | | |")
        else:
            lines.append(f"| {suite} | {target} | {c['passed']} | {c['failures']} | "
                         f"{c['errors']} | {c['skipped']} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("suite", choices=["cpython", "django", "sqlalchemy"])
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    logs = os.path.join(args.work, "logs")
    os.makedirs(logs, exist_ok=True)
    rows = {"cpython": cpython, "django": django, "sqlalchemy": sqlalchemy}[args.suite](
        args.work, logs)
    print(table(rows))
    print(f"(logs in {logs})")


if __name__ == "__main__":
    main()
