import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import litepool  # noqa: E402


@pytest.fixture
def db(tmp_path):
    """A database file path whose pool is closed after the test."""
    path = str(tmp_path / "test.db")
    yield path
    try:
        litepool.open(path).close()
    except litepool.Error:
        pass


@pytest.fixture
def conn(db):
    c = litepool.connect(db)
    yield c
    c.close()


@pytest.fixture
def mem():
    c = litepool.connect(":memory:")
    yield c
    c.close()
