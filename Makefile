# berth: build, test and try it out.
#   make run     build berth and a busybox image, then open a shell in a container
#   make test    unit and black-box tests (root for the container tests)
#   make lint    rustfmt and clippy, warnings are errors

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := build
MAKEFLAGS += --no-builtin-rules

CARGO ?= cargo
# Cargo honours CARGO_TARGET_DIR; so do we when looking for the binary.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
BERTH := $(TARGET_DIR)/release/berth
IMAGE := $(CURDIR)/target/busybox.tar

# Debian packages the build, the tests and the peer runtimes need.
DEBIAN_PACKAGES := busybox-static pkg-config nftables iproute2 crun runc

.PHONY: deps build image run test lint bench clean

deps:
	@missing=()
	for pkg in $(DEBIAN_PACKAGES); do
	    dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$$pkg")
	done
	if [[ $${#missing[@]} -eq 0 ]]; then exit 0; fi
	if ! command -v apt-get >/dev/null; then
	    echo "deps: not a Debian system; please install: $${missing[*]}" >&2
	    exit 0
	fi
	if [[ $$(id -u) -ne 0 ]]; then
	    echo "deps: not root, skipping: $${missing[*]}" >&2
	    exit 0
	fi
	echo "deps: installing $${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "$${missing[@]}" >/dev/null

build:
	$(CARGO) build --release

image: $(IMAGE)

$(IMAGE): scripts/mkimage.sh
	scripts/mkimage.sh $@

run: deps build image
	@if [[ -z $$($(BERTH) images -q busybox 2>/dev/null || true) ]]; then
	    $(BERTH) import $(IMAGE) busybox
	fi
	exec $(BERTH) run -ti busybox sh

# The black-box tests find the binary and the image through these.
test bench: export BERTH_BIN := $(BERTH)
test bench: export BERTH_TEST_IMAGE := $(IMAGE)

test: deps image
	$(CARGO) build --release
	if $(CARGO) nextest --version >/dev/null 2>&1; then
	    $(CARGO) nextest run --workspace --release --no-fail-fast
	else
	    $(CARGO) test --workspace --release
	fi

# deps first: crates that link system libraries need pkg-config even to be checked.
lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: build image
	scripts/bench.sh

clean:
	$(CARGO) clean
	rm -f $(IMAGE)
