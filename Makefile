# Everything a newcomer needs: `make demo` and `make test` set themselves up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean browser docs docs-figures screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU wheel on disk; any other version downloads gigabytes
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,ray,lightning,hf,tensorboard,docs]'
	touch $(STAMP)

# The perceptron lab: fixed-norm curves for six alpha with the laws fitted on them, then
# free-norm gradient descent at alpha = 3.1 drawn over its fixed-norm curve (figure (d)).
demo: $(STAMP)
	$(VENV)/bin/normscale perceptron --alpha 3.1,6.25,12.5,25,50,100 --lam 0.01:300:40 \
		--n 300 --seeds 2 --mode fixed --laws --out results/perceptron
	$(VENV)/bin/normscale perceptron --alpha 3.1 --n 300 --seeds 2 --mode gd \
		--fixed-csv results/perceptron/results.csv --out results/perceptron/gd

test: $(STAMP) browser docs
	$(PY) -m pytest -q

# The documentation site (mkdocs.yml), strict: any warning (a page outside nav, a broken
# link, a docstring griffe cannot parse) fails the build. Never add --quiet: it hides the
# warnings from strict mode.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir build/site

# The figures and generated numbers of the user guide, written by the project's commands
# into docs/figures/ (commit them). Pages embed the images and include the tables
# (pymdownx.snippets, `--8<-- "figures/..."`) or quote a number from a JSON file
# ({{ figures/....json#key | .3f }}, docs/_hooks/numbers.py); tests/test_docs.py checks
# that every such file exists and is written by a command of this target.
FIG := docs/figures
docs-figures: $(STAMP)
	$(VENV)/bin/normscale perceptron --alpha 3.1,6.25,12.5,25,50,100 --lam 0.01:300:40 \
		--n 300 --seeds 2 --mode fixed --laws --quiet --out $(FIG)/perceptron
	$(VENV)/bin/normscale perceptron --alpha 3.1 --n 300 --seeds 2 --mode gd --quiet \
		--fixed-csv $(FIG)/perceptron/results.csv --out $(FIG)/perceptron-gd
	$(VENV)/bin/normscale theory --laws --alpha 3.1:100:12 --lam 0.01:300:60 --quiet \
		--sim $(FIG)/perceptron/results.csv --out $(FIG)/theory
	$(PY) examples/lightning_digits.py --out $(FIG)/lightning-digits
	$(VENV)/bin/normscale fit $(FIG)/lightning-digits/curves.csv --quiet \
		--out $(FIG)/lightning-digits/fit
	# the norms figure: the paper's CNN trained 30 epochs on 500 bundled digits (no download;
	# the checkpoint, 14 MB with its optimizer state, stays under build/), then measured
	$(VENV)/bin/normscale train --model cnn --dataset digits --P 500 --seed 0 --epochs 30 \
		--quiet --checkpoint build/docs-figures/norms-digits.pt
	$(VENV)/bin/normscale norms build/docs-figures/norms-digits.pt --quiet --out $(FIG)/norms

# Chromium screenshots (home page, laws page, an example page, a report) into
# build/screenshots/, each checked to show its figures with no sideways scrolling.
screenshots: $(STAMP) browser
	NORMSCALE_SCREENSHOTS=build/screenshots $(PY) -m pytest -q tests/test_screenshots.py

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
