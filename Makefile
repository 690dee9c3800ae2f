# tinyreg: every install step lives here; CI runs `make test` on a clean clone.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
# two stamps, one venv: the demo needs only the base package and scikit-image (measured: about
# 480 MB, no torch, Ray, PyAV or linters); everything else (tests, docs, export, bench) installs
# the rest on top (about 2.1 GB).
BASE    := $(VENV)/.installed-base
DEV     := $(VENV)/.installed-dev
# pip finds torch==2.13.0 (CPU) on local disk where the machine has it; the pin
# keeps an unpinned resolve from pulling several GB of CUDA wheels.
PIP_FLAGS ?= --disable-pip-version-check
# the suite runs on every core (pytest-xdist; work stealing evens out the long gate tests);
# PYTEST_PAR= runs it in one process
PYTEST_PAR ?= -n auto --dist worksteal

.PHONY: install install-base oci-tools browser-tools demo test test-fast bench lint parity fuzz docs clean

install: $(DEV)
install-base: $(BASE)

$(BASE): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -q --upgrade pip
	# the base package (onnx, onnxruntime, numpy, pillow, typer, ...) and the gate's natural images
	$(BIN)/python -m pip install $(PIP_FLAGS) -q -e '.[gate]'
	touch $(BASE)

$(DEV): $(BASE)
	# video (PyAV) and scale (Ray Data) are optional for users, tested in CI; docs builds the site
	$(BIN)/python -m pip install $(PIP_FLAGS) -q -e '.[export,sign,dev,video,scale,docs]'
	# the LPIPS reference, for parity only; --no-deps because its unpinned torchvision
	# requirement would replace the pinned CPU torch with a CUDA build
	$(BIN)/python -m pip install $(PIP_FLAGS) -q --no-deps lpips==0.1.4
	# the README's quick start makes its key pair with openssl (tests/test_readme.py runs it)
	command -v openssl >/dev/null || (apt-get update && apt-get install -y openssl)
	touch $(DEV)

# a real OCI registry (CNCF distribution) and an independent client for tests/distribution
# (Debian packages; CI runs as root on Debian, where a missing one fails the tests instead of skipping them)
oci-tools:
	command -v docker-registry >/dev/null && command -v skopeo >/dev/null || (apt-get update && apt-get install -y docker-registry skopeo)

# headless chromium for the report's browser test (tests/report; Debian's, or a CI runner's Chrome)
browser-tools:
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
		|| (apt-get update && apt-get install -y chromium)

# what a newcomer runs first: the lean install only (base and gate; no torch, Ray, PyAV or linters)
demo: $(BASE)
	$(BIN)/tinyreg --version
	$(BIN)/tinyreg list
	$(BIN)/tinyreg verify
	$(BIN)/tinyreg check-ops dists_vgg16
	$(BIN)/tinyreg quant-gate --all
	@du -sh $(VENV) | sed 's/^/demo venv size: /'

# the site: the CLI reference regenerated from the app, then a strict build into site/
docs: $(DEV)
	$(BIN)/python -m registry.cli._reference
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

test: install oci-tools browser-tools
	$(BIN)/ruff check registry tests ai bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo
	$(BIN)/tinyreg verify
	$(BIN)/tinyreg pin --all --check
	$(BIN)/tinyreg quant-gate --all
	$(BIN)/python -m registry.cli._reference --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $$(mktemp -d)
	$(BIN)/python -m pytest -q $(PYTEST_PAR)

# everything but the tests marked slow (pytest -m slow lists them: every test of a second or more on the 2-core
# machine), with a shorter fuzz budget per format; make test runs them all
test-fast: install oci-tools browser-tools
	TINYREG_FUZZ_TEST_SECONDS=0.25 $(BIN)/python -m pytest -q -m "not slow" $(PYTEST_PAR)

lint: install
	$(BIN)/ruff check registry tests ai bench examples
	$(BIN)/mypy
	# the layers of docs/architecture.md ([tool.importlinter] in pyproject.toml)
	$(BIN)/lint-imports --no-logo
	# workflows: zizmor (offline: no GitHub API) and actionlint, both installed by the dev extra
	$(BIN)/zizmor --offline .github/workflows
	$(BIN)/actionlint .github/workflows/*.yml

# the fuzz harness over every format tinyreg reads, for TINYREG_FUZZ_SECONDS in all (default 30 min; make test
# runs it for about a second a format); failing inputs are kept in .fuzz-crashes/
fuzz: install
	TINYREG_FUZZ_SECONDS=$${TINYREG_FUZZ_SECONDS:-1800} $(BIN)/python -m tests.fuzz_harness --crashes .fuzz-crashes

bench: install oci-tools
	$(BIN)/python -m bench

parity: install
	$(BIN)/python ai/scripts/dists_parity.py --pairs 20

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info site
