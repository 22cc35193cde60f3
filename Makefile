# Quick start:  make run                    — install what is missing, then start the service (SQLite default)
#               make run FILE=page.png     — install what is missing, then print the text of page.png
#               make test                  — install what is missing, then run the whole test suite (but the Ray tests)
#               make test-fast             — unit tests only (no servers, databases or full engine runs)
#               make test-ray              — the tests on a local Ray cluster (`make test` leaves them out)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Where the `ocrpipe` command is linked so that it is on the PATH after `make run`.
BINDIR ?= $(if $(filter 0,$(shell id -u)),/usr/local/bin,$(HOME)/.local/bin)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_PACKAGES := python3-venv tesseract-ocr tesseract-ocr-kor tesseract-ocr-eng fontconfig \
	fonts-nanum fonts-nanum-extra fonts-noto-cjk fonts-unfonts-core fonts-unfonts-extra fonts-baekmuk \
	fonts-dejavu-core hunspell-ko wamerican libgl1 libglib2.0-0 chromium \
	poppler-utils qpdf ghostscript
FILE ?=
PYTEST_ARGS ?=

.PHONY: run test test-fast test-ray install install-dev system-deps serve lint clean

run: install
	@if [ -n "$(FILE)" ]; then $(BIN)/ocrpipe ocr $(FILE); else $(BIN)/ocrpipe serve; fi

test: install-dev
	$(BIN)/python -m pytest -m "not ray" $(PYTEST_ARGS)

# Separate from `test` (CI runs both): each starts and stops its own head and worker nodes
test-ray: install-dev
	OCRPIPE_REQUIRE_RAY=1 $(BIN)/python -m pytest -m ray $(PYTEST_ARGS)

test-fast: install-dev
	$(BIN)/python -m pytest -m "not integration and not postgres" $(PYTEST_ARGS)

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev,train]'
	@touch $@

install: system-deps $(VENV)/.installed
	@mkdir -p $(BINDIR) && ln -sf $(abspath $(BIN))/ocrpipe $(BINDIR)/ocrpipe

install-dev: system-deps $(VENV)/.installed-dev
	@mkdir -p $(BINDIR) && ln -sf $(abspath $(BIN))/ocrpipe $(BINDIR)/ocrpipe

serve: install
	$(BIN)/ocrpipe serve

lint: install-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) build dist src/*.egg-info
