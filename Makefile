# Everything a newcomer needs: `make demo` and `make test` set themselves up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean browser docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU wheel on disk; any other version downloads gigabytes
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,ray,lightning,hf,tensorboard,docs]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/normscale perceptron --alpha 3.1,6.25,12.5,25,50,100 --lam 0.01:300:40 \
		--n 300 --seeds 2 --mode fixed --laws --out results/perceptron

test: $(STAMP) browser docs
	$(PY) -m pytest -q

# The documentation site (mkdocs.yml), strict: a broken link or docstring fails the build.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir build/site

# Headless Chromium for the report's page test (skipped, with a reason, where it cannot be had).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		>/dev/null 2>&1; } || echo "note: chromium not installed; the report page test will skip"

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) results build *.egg-info
