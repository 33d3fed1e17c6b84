# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= examples/ecommerce-workorders
HTMX_VERSION := 2.0.11
HTMX_SHA256  := d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717
HTMX         := ui/static/vendor/htmx.min.js

.PHONY: demo test install clean bench chromium dovecot messages

$(STAMP): pyproject.toml examples/routecard-iban/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet -e examples/routecard-iban
	touch $(STAMP)

# htmx is a pinned npm package, fetched and checked here, never committed.
$(HTMX):
	mkdir -p ui/static/vendor .npm-pack
	cd .npm-pack && npm pack --silent htmx.org@$(HTMX_VERSION) >/dev/null && tar xzf htmx.org-$(HTMX_VERSION).tgz package/dist/htmx.min.js
	echo "$(HTMX_SHA256)  .npm-pack/package/dist/htmx.min.js" | sha256sum --check --quiet
	cp .npm-pack/package/dist/htmx.min.js $(HTMX)
	rm -rf .npm-pack

# The browser tests drive the system's Chromium; install Debian's package where it is missing and we may.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
	  else echo "chromium is not installed: the browser tests will be skipped (CI requires it)"; fi; }

# The IMAP poller's tests run Debian's dovecot on loopback (never as a system service).
dovecot:
	@command -v /usr/sbin/dovecot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q dovecot-imapd >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q dovecot-imapd >/dev/null; }; \
	  else echo "dovecot is not installed: the IMAP tests will be skipped (CI requires it)"; fi; }

install: $(STAMP) $(HTMX)

demo: install
	$(VENV)/bin/routecard demo $(DEMO)

# pytest exits 5 when it collected no tests: that is a failure here, like any other non-zero code.
test: install chromium dovecot
	$(PY) -m pytest

# The UI's own words: extract them and merge them into each language's catalogue.
messages: $(STAMP)
	$(VENV)/bin/pybabel -q extract -F ui/locale/babel.cfg -k _ -k N_ --no-location --sort-output -o ui/locale/messages.pot .
	for lang in de ru zh; do \
	  if [ -f ui/locale/$$lang/LC_MESSAGES/messages.po ]; then \
	    $(VENV)/bin/pybabel -q update --no-fuzzy-matching -i ui/locale/messages.pot -d ui/locale -l $$lang; \
	  else $(VENV)/bin/pybabel -q init -i ui/locale/messages.pot -d ui/locale -l $$lang; fi; \
	done

bench: $(STAMP)
	$(PY) bench/compile_workspace.py
	$(PY) bench/add_field_migration.py
	$(PY) bench/api_throughput.py
	$(PY) bench/ui_pages.py
	$(PY) bench/sla_sweep.py
	$(PY) bench/timesheet_report.py
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/conditions.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info ui/static/vendor .npm-pack
