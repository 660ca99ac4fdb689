# Commune hub. `make` alone lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= $(or $(HUB_PORT),8080)

# Debian packages the hub and its tests use, by area.
APT_BASE := python3 python3-venv python3-dev build-essential pkg-config sqlite3
APT_AUDIO := portaudio19-dev libasound2-plugins ffmpeg sox libsox-fmt-all espeak-ng alsa-utils
APT_NET := hostapd dnsmasq nftables iproute2 udhcpc dnsutils curl
APT_IMAGE := dosfstools mtools e2fsprogs e2tools fdisk
# `make image` (an arm64 root under qemu-user-static) and `make image-test` (QEMU).
APT_IMAGE_BUILD := mmdebstrap arch-test qemu-user-static binfmt-support systemd-container xz-utils dosfstools mtools e2fsprogs fdisk git
APT_IMAGE_TEST := $(APT_IMAGE_BUILD) qemu-system-arm curl
APT_WEB := nginx chromium fonts-noto-core zbar-tools
# The browser tests' npm tools (axe-core, Lighthouse); installed only where no node/npm is on the PATH,
# because a machine may have Node.js from elsewhere (whose nodejs package conflicts with Debian's npm).
APT_NODE := nodejs npm
NODE_TOOLS := tests/browser
APT_BENCH := wrk
# The booted-appliance tests: a Debian root, booted with systemd-nspawn.
APT_SYSTEMD := systemd systemd-container mmdebstrap
# The central server's tests and bench run a real PostgreSQL.
APT_CENTRAL := postgresql
APT_RUN := $(APT_BASE) $(APT_AUDIO)
APT_TEST := $(APT_BASE) $(APT_AUDIO) $(APT_NET) $(APT_IMAGE) $(APT_WEB) $(APT_SYSTEMD) $(APT_CENTRAL)

.DEFAULT_GOAL := help

.PHONY: help run test bench lint docs messages font clean image image-test appliance system-run system-test system-bench system-image system-image-test

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

run: system-run $(VENV)/.installed ## Set up and start the hub with demo data at http://127.0.0.1:8080/
	HUB_PORT=$(PORT) $(BIN)/hub run --demo

test: system-test $(VENV)/.installed-test $(NODE_TOOLS)/node_modules/.installed ## Set up and run every test
	$(BIN)/pytest -q $(PYTEST_ARGS)

bench: system-bench $(VENV)/.installed-test ## Print speed and memory figures side by side
	$(BIN)/python -m tests.bench $(BENCH)

lint: $(VENV)/.installed-test ## Check style with ruff
	$(BIN)/ruff check hub tests tools

docs: $(VENV)/.installed ## Refresh the settings table in README.md
	$(BIN)/python -m tools.settings_table

messages: $(VENV)/.installed ## Update the Khmer catalogue from the code and list untranslated strings
	$(BIN)/python -m tools.catalog

font: $(VENV)/.installed-test ## Rebuild the bundled Khmer font subset from fonts-noto-core
	$(BIN)/pip install -q '.[font]'
	$(BIN)/python -m tools.fontsubset

appliance: system-test $(VENV)/.installed-test ## Boot this checkout as a Pi runs it (systemd, nginx) and say how to reach it
	$(BIN)/python -m tests.system.appliance

image: system-image $(VENV)/bin/pip ## Build the arm64 SD-card image from Debian packages (PIGEN_DIR=... for Raspberry Pi OS; see provisioning/README.md)
	PYTHON=$(CURDIR)/$(BIN)/python provisioning/build-image.sh

image-test: system-image-test $(VENV)/.installed-test ## Boot the built image under qemu-system-aarch64: first boot, portal, doctor, power cut, read-only root
	$(BIN)/python -m tests.system.image_test $(IMAGE_TEST)

clean: ## Remove the venv and development data
	rm -rf $(VENV) var .pytest_cache $(NODE_TOOLS)/node_modules

system-run:
	@provisioning/apt-install.sh $(APT_RUN)

system-test:
	@provisioning/apt-install.sh $(APT_TEST)

system-image:
	@provisioning/apt-install.sh $(APT_IMAGE_BUILD)

system-image-test:
	@provisioning/apt-install.sh $(APT_IMAGE_TEST)

# axe-core and Lighthouse at the versions (and integrity hashes) of the lockfile; npm's cache is used first.
$(NODE_TOOLS)/node_modules/.installed: $(NODE_TOOLS)/package.json $(NODE_TOOLS)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || provisioning/apt-install.sh $(APT_NODE)
	cd $(NODE_TOOLS) && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
	touch $@

system-bench:
	@provisioning/apt-install.sh $(APT_TEST) $(APT_BENCH)

$(VENV)/bin/pip:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml $(VENV)/bin/pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/bin/pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed
