# `make compat`, Python part: CPython's test_sqlite3, Django's and SQLAlchemy's suites on the
# stdlib sqlite3 and on litepool, side by side (tests/python/compat/run.py prints the table;
# RELIABILITY.md, "Compatibility", quotes it). Minutes each; not part of `make test`.

COMPAT_PY_DIR := $(CURDIR)/target/compat/python
DJANGO_VERSION := 5.2.20
SQLALCHEMY_VERSION := 2.0.59

COMPAT_TARGETS += compat-cpython compat-django compat-sqlalchemy

.PHONY: compat-cpython compat-django compat-sqlalchemy compat-python-suites

compat-cpython: python-build python-testsuite
	$(PY_BIN)/python tests/python/compat/run.py cpython --work $(COMPAT_PY_DIR)

# The projects' sdists (they carry the test suites), unpacked, and the packages installed
# into the virtualenv (with pytest, SQLAlchemy's runner; aiosqlite, its async dialect's driver,
# is among the pins already).
$(COMPAT_PY_DIR)/.suites: mk/compat.mk | python-venv
	rm -rf $(COMPAT_PY_DIR)/sdist $(COMPAT_PY_DIR)/django $(COMPAT_PY_DIR)/sqlalchemy
	mkdir -p $(COMPAT_PY_DIR)/sdist $(COMPAT_PY_DIR)/django $(COMPAT_PY_DIR)/sqlalchemy
	$(PY_BIN)/python -m pip download -q --disable-pip-version-check --no-deps \
	  --no-binary django --no-binary sqlalchemy -d $(COMPAT_PY_DIR)/sdist \
	  django==$(DJANGO_VERSION) sqlalchemy==$(SQLALCHEMY_VERSION)
	tar xzf $(COMPAT_PY_DIR)/sdist/django-$(DJANGO_VERSION).tar.gz --strip-components=1 \
	  -C $(COMPAT_PY_DIR)/django
	tar xzf $(COMPAT_PY_DIR)/sdist/sqlalchemy-$(SQLALCHEMY_VERSION).tar.gz --strip-components=1 \
	  -C $(COMPAT_PY_DIR)/sqlalchemy
	DISABLE_SQLALCHEMY_CEXT=1 $(PY_BIN)/python -m pip install -q --disable-pip-version-check \
	  $(COMPAT_PY_DIR)/sdist/django-$(DJANGO_VERSION).tar.gz \
	  $(COMPAT_PY_DIR)/sdist/sqlalchemy-$(SQLALCHEMY_VERSION).tar.gz
	@touch $@

compat-python-suites: $(COMPAT_PY_DIR)/.suites

compat-django: python-build compat-python-suites
	$(PY_BIN)/python tests/python/compat/run.py django --work $(COMPAT_PY_DIR)

compat-sqlalchemy: python-build compat-python-suites
	$(PY_BIN)/python tests/python/compat/run.py sqlalchemy --work $(COMPAT_PY_DIR)
