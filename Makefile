# make run       installs into .venv/ and starts web, worker and scheduler
# make cluster   the same scaled out: Redis Cluster, two web servers behind nginx, MySQL
# make test      installs the test tools, checks lint and formatting, and runs the suite
# make messages  extracts the strings to translate into each messages.po
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
PYTHON ?= python3
POT    := app/translations/messages.pot
MO     := $(patsubst %.po,%.mo,$(wildcard app/translations/*/LC_MESSAGES/messages.po))

.PHONY: run cluster test lint services bench clean screenshots translations messages

$(VENV)/.run-deps: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.test-deps: $(VENV)/.run-deps requirements-dev.txt
	$(PIP) install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The compiled catalogs (.mo) are not in git: built from each .po when it changes.
translations: $(MO)

$(MO): %.mo: %.po $(VENV)/.run-deps
	$(VENV)/bin/pybabel compile --statistics -i $< -o $@

# After adding or changing a string: extract them all, merge into each
# messages.po, then translate the new entries (tests/test_i18n.py insists).
messages: $(VENV)/.run-deps
	$(VENV)/bin/pybabel -q extract -F babel.cfg -k _l -w 100 --project=ticketdrop -o $(POT) .
	$(VENV)/bin/pybabel -q update -i $(POT) -d app/translations -w 100 \
		--no-fuzzy-matching --ignore-obsolete

run: $(VENV)/.run-deps translations
	$(PY) bin/run

# ruff (lint, then formatting) on the working tree; then the other hooks of
# .pre-commit-config.yaml (whitespace, YAML) on every file git tracks.
lint: $(VENV)/.test-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	SKIP=ruff-check,ruff-format $(VENV)/bin/pre-commit run --all-files --show-diff-on-failure

# Starts a local MariaDB / Redis when they are installed but not running
# (CI must not skip the MySQL tests); otherwise the suite starts an embedded
# Redis and falls back to SQLite by itself.
services:
	bin/services

# Browser tests (tests/test_e2e_*.py): Debian's Chromium and a Korean font,
# with apt-get when missing (browsers cannot be downloaded here), and axe-core
# from npm.
$(VENV)/.e2e-deps: tests/e2e/package.json tests/e2e/package-lock.json
	(test -x /usr/bin/chromium && fc-list :lang=ko | grep -q .) || \
	  (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk)
	cd tests/e2e && npm ci --no-audit --no-fund --silent
	touch $@

# The real engines the scale-out tests start on loopback and in network
# namespaces (a Redis Cluster of Debian's redis-server, nginx, iproute2,
# faketime for the workers on clocks of their own), and Prometheus with promtool
# for deploy/prometheus/ (tests/test_prometheus.py), systemd-analyze for
# deploy/systemd/ (tests/test_deploy.py), with apt-get when missing.
$(VENV)/.system-deps:
	(command -v redis-server && command -v redis-cli && command -v nginx && command -v ip \
	  && command -v faketime) \
	  >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server nginx iproute2 faketime)
	(command -v promtool && command -v prometheus && command -v systemd-analyze) >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq prometheus systemd)
	touch $@

# The Redis-side tests run twice: on one Redis, then on a Redis Cluster of
# six redis-server processes the suite starts itself (TEST_REDIS=cluster).
CLUSTER_TESTS := tests/test_waiting_room.py tests/test_admission.py tests/test_entrance.py \
	tests/test_holds.py tests/test_checkout.py tests/test_jobs.py tests/test_faults.py \
	tests/test_limits.py tests/test_hot_path.py tests/test_sold_out.py tests/test_smoke.py \
	tests/test_fair_start.py tests/test_poll_budget.py tests/test_sale_rules.py tests/test_bots.py \
	tests/test_costly_requests.py tests/test_sessions.py tests/test_metrics.py tests/test_returns.py

# bin/cluster: a Redis Cluster, two web servers behind nginx (deploy/nginx.conf),
# two workers and the scheduler, on MySQL (DATABASE_URL or the local one).
cluster: $(VENV)/.run-deps translations $(VENV)/.system-deps
	$(PY) bin/cluster

test: lint services translations $(VENV)/.e2e-deps $(VENV)/.system-deps
	$(PY) -m pytest $(PYTEST_ARGS)
	TEST_REDIS=cluster $(PY) -m pytest -m "not cluster and not netns" $(CLUSTER_TESTS) $(PYTEST_ARGS)

# The browser tests again, saving their screenshots into docs/screenshots/.
screenshots: $(VENV)/.test-deps $(VENV)/.e2e-deps services
	E2E_SCREENSHOTS=docs/screenshots $(PY) -m pytest -m e2e $(PYTEST_ARGS)

# Benchmarks (not part of make test): figures and PASS/MISS, see BENCHMARKS.md.
$(VENV)/.bench-deps: $(VENV)/.test-deps requirements-bench.txt
	$(PIP) install -q --disable-pip-version-check -r requirements-bench.txt
	(command -v wrk && command -v valgrind) >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq wrk valgrind)
	touch $@

bench: $(VENV)/.bench-deps services
	cd bench && ../$(PY) run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
