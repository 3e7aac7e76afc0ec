# The README's two commands: `make demo` and `make test`. Each builds its own virtual environment.
PYTHON ?= python3
VENV ?= .venv
DEMO_VENV ?= .venv-demo
CORE_VENV ?= .venv-core
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck unit without-ml pushgateway chromium bench clean

# Byte code is compiled at install (as a wheel install would): start-up then never compiles
# sources, even where PYTHONDONTWRITEBYTECODE is set.
# Core only (no extras): proves the CLI needs nothing beyond the standard library.
$(DEMO_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/pip install -q --disable-pip-version-check -e .
	$(DEMO_VENV)/bin/python -m compileall -q src >/dev/null
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,server,postgres,worker,cmdb,agents,ml,witness,audit]'
	$(BIN)/python -m compileall -q src >/dev/null
	touch $@

# Every extra but `ml` (scikit-learn): the learned risk model is optional.
$(CORE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev,server,postgres,worker,cmdb,agents,witness,audit]'
	$(CORE_VENV)/bin/python -m compileall -q src >/dev/null
	touch $@

demo: $(DEMO_VENV)/.installed
	PATH="$(CURDIR)/$(DEMO_VENV)/bin:$$PATH" ./examples/youtube-bugfix.sh

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# The Pushgateway the `metrics push` tests push to (Debian's package), installed only when
# missing and never fatal: without it those tests skip, saying why.
pushgateway:
	@command -v prometheus-pushgateway >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q prometheus-pushgateway >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 \
	  && apt-get install -y -q prometheus-pushgateway >/dev/null 2>&1; }; } \
	  || echo "prometheus-pushgateway not installable: the metrics push tests will skip"

# The browser the portal's Playwright tests drive (Debian's package, /usr/bin/chromium; Playwright
# never downloads one), installed only when missing and never fatal: without it those tests skip.
chromium:
	@command -v chromium >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 \
	  && apt-get install -y -q chromium >/dev/null 2>&1; }; } \
	  || echo "chromium not installable: the portal browser tests will skip"

unit: $(VENV)/.installed pushgateway chromium
	$(BIN)/pytest -q

# Without scikit-learn: the tests of everything the learned risk model touches (the rest of the
# suite never imports it), proving the core works and the model's doors say what to install.
ML_TESTS := tests/e2e/test_cli_without_ml.py tests/services/test_risk_model.py tests/e2e/test_cli_risk.py \
	tests/services/test_policy_simulation.py tests/e2e/test_cli_policy_simulate.py tests/portal/test_portal_risk.py \
	tests/unit/test_domain_prediction.py tests/unit/test_domain_evaluation.py tests/cli/test_startup_imports.py
without-ml: $(CORE_VENV)/.installed chromium
	$(CORE_VENV)/bin/pytest -q -p no:cacheprovider $(ML_TESTS)

test: lint typecheck unit without-ml

# Each script exits 1 when a budget is missed; `-` keeps going so every figure is printed.
bench: $(VENV)/.installed
	-$(BIN)/python bench/cli.py
	-$(BIN)/python bench/api.py --seconds 10

clean:
	rm -rf $(VENV) $(DEMO_VENV) $(CORE_VENV) .pytest_cache .mypy_cache .ruff_cache
