# Two entry points: `make demo` and `make test`. Both set up everything they need.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUILD := .build
# ansible and pytest find the collection through this tree (a symlink to the checkout).
COLLECTIONS := $(abspath $(BUILD)/collections)
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/idsync/provisioning
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: all demo test sanity lint unit integration bench build clean system-packages venv collection
.PHONY: sanity-cores unit-cores changelog-lint galaxy-importer ee

all: test

venv: $(VENV)/.installed
# system-packages first: python-ldap (requirements/dev.txt) compiles against libldap.
$(VENV)/.installed: requirements/dev.txt requirements/runtime.txt | system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@

# From Debian, installed only when one is missing: slapd and ldap-utils (the directory of the tests
# and the demo, ldapsearch for the benchmarks), Samba's AD domain controller and 389-DS (the real
# directories of the tests), and what python-ldap compiles with (gcc, libldap2-dev, libsasl2-dev).
SYSTEM_PACKAGES := slapd ldap-utils samba samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind krb5-user ldb-tools 389-ds-base gcc libldap2-dev libsasl2-dev
system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing from Debian:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

collection:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn $(CURDIR) $(COLLECTION_LINK)

demo: venv system-packages collection
	$(BIN)/python tests/support/demo.py

# The sample directory and the SCIM service of `make demo`, left running to write playbooks against;
# pids, inventory and env.sh in SANDBOX_DIR (tests/support/sandbox.py). sandbox-stop ends those pids.
SANDBOX_DIR ?= $(BUILD)/sandbox
.PHONY: sandbox sandbox-stop
sandbox: venv system-packages collection
	@$(BIN)/python tests/support/sandbox.py start --dir $(SANDBOX_DIR)

sandbox-stop:
	@$(BIN)/python tests/support/sandbox.py stop --dir $(SANDBOX_DIR)

# The checks before the integration tests run two at a time (2 cores; most of their time is downloads
# and venv creation, which overlap well), each target's output printed in one piece when it ends
# (--output-sync), and every one of them run even after a failure (-k), which still fails make test.
# ansible-test runs one at a time (a lock in ansible_test_sanity). The integration tests come last,
# alone: they use both cores themselves.
CHECKS := sanity lint unit changelog-lint galaxy-importer ee unit-cores sanity-cores
.PHONY: checks
test: venv system-packages collection
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory -j2 -k --output-sync=target checks; \
	echo "make test: checks passed in $$(( $$(date +%s) - start )) s"; \
	$(MAKE) --no-print-directory integration; \
	echo "make test: all checks passed in $$(( $$(date +%s) - start )) s"

checks: $(CHECKS)

# $(call pytest,<venv dir>,<arguments>): pytest, failing when it ran no test at all (it exits 5 when it
# collects nothing; a summary without "N passed", everything skipped or deselected, fails here too).
define pytest
	@echo "$(1)/bin/pytest $(2)"
	@$(1)/bin/pytest $(2) 2>&1 | tee $(BUILD)/$@.pytest.log
	@grep -Eq '(^|[ =])[1-9][0-9]* passed' $(BUILD)/$@.pytest.log || { echo "$@: no test passed"; exit 1; }
endef

# ansible-core besides the pinned one of requirements/dev.txt: the oldest that meta/runtime.yml
# claims (2.16, as in Automation Platform 2.5 execution environments) and the newest released, each
# in a venv of its own under .build. 2.20 and later need Python >= 3.12:
# pyenv's 3.13 or 3.12 when there is one; without, the targets for that core skip with a message.
CORE_OLDEST := 2.16.19
CORE_NEWEST := 2.21.5
PYENV_VERSIONS := $(shell pyenv root 2>/dev/null)/versions
NEWEST_PYTHON := $(firstword $(wildcard $(PYENV_VERSIONS)/3.13*/bin/python3.13 $(PYENV_VERSIONS)/3.12*/bin/python3.12))
OLDEST_VENV := $(BUILD)/venv-core-$(CORE_OLDEST)
NEWEST_VENV := $(BUILD)/venv-core-$(CORE_NEWEST)
# The module Pythons that tests/config.yml claims are looked up on PATH by ansible-test (import and
# compile tests): pyenv's interpreters are linked into one directory put first on PATH.
MODULE_PYTHONS := $(wildcard $(PYENV_VERSIONS)/3.*/bin/python3.[0-9] $(PYENV_VERSIONS)/3.*/bin/python3.[0-9][0-9])

# $(call core_venv,<python>,<ansible-core version>,<venv dir>): that core, with the libraries of
# requirements/dev.txt that the unit tests use (its tools tied to the pinned core left out).
CORE_VENV_SKIP := ansible-core ansible-lint molecule ansible-builder ansible-runner antsibull-changelog ruff python-ldap
define core_venv
	rm -rf $(3)
	$(1) -m venv $(3)
	grep -vE '^($(subst $(space),|,$(CORE_VENV_SKIP)))[=<>~ ]' requirements/dev.txt | sed 's|^-r runtime.txt|-r $(CURDIR)/requirements/runtime.txt|' > $(3)/requirements.txt
	$(3)/bin/pip install --quiet ansible-core==$(2) -r $(3)/requirements.txt
	touch $(3)/.installed
endef
space := $(subst ,, )

$(OLDEST_VENV)/.installed: requirements/dev.txt requirements/runtime.txt
	$(call core_venv,$(PYTHON),$(CORE_OLDEST),$(OLDEST_VENV))

$(NEWEST_VENV)/.installed: requirements/dev.txt requirements/runtime.txt
	$(call core_venv,$(NEWEST_PYTHON),$(CORE_NEWEST),$(NEWEST_VENV))

# ansible-test resolves symlinks, so it runs on a copy of the tracked files, made outside the
# checkout (inside a git work tree it would only see git's files) and fresh for every run.
# Its pip bootstrap download is replaced by ensurepip (see shared ENVIRONMENT.md), under every file
# name that this ansible-test asks for (get_pip_<its pip version>.py; each core names another pip).
# ansible-test keeps its sanity venvs in ~/.ansible/test, shared by the cores (a venv's name is a hash
# of its pip commands): with make -j2, one ansible-test at a time, under a lock.
# $(call ansible_test_sanity,<venv dir>[,<ansible-test sanity options, e.g. a --test selection>])
define ansible_test_sanity
	@mkdir -p $(HOME)/.ansible/test/cache
	@for pip in $$(sed -n "s/.*pip='\([0-9.]*\)'.*/\1/p" $(1)/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py); do \
	  f=$(HOME)/.ansible/test/cache/get_pip_$${pip//./_}.py; \
	  printf 'import ensurepip\nensurepip.bootstrap(upgrade=True)\n' > $$f.$$$$ && mv -f $$f.$$$$ $$f; \
	done
	@root=$$(mktemp -d -t idsync-sanity-XXXXXX); tree=$$root/ansible_collections/idsync/provisioning; \
	mkdir -p $$tree $$root/bin; \
	for py in $(MODULE_PYTHONS); do ln -sf $$py $$root/bin/; done; \
	git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t $$tree/; \
	echo "ansible-test sanity, ansible-core $$($(1)/bin/python -c 'import ansible; print(ansible.__version__)'), module Pythons found: $$(ls $$root/bin | tr '\n' ' ')"; \
	status=0; (cd $$tree && PATH=$$root/bin:$$PATH flock $(HOME)/.ansible/test/cache/.sanity.lock $(abspath $(1))/bin/ansible-test sanity --requirements --color no $(2)) || status=$$?; \
	rm -rf $$root; exit $$status
endef

sanity: venv
	$(call ansible_test_sanity,$(VENV))

# The oldest and the newest core: the unit tests (plain pytest, that core's ansible), and the sanity
# tests whose result depends on the core: compile and import (the modules and module_utils on each
# module Python that this core supports, with this core's module_utils), validate-modules and
# ansible-doc (the documentation and argument specs as this core reads them), runtime-metadata
# (meta/runtime.yml against this core's schema). The style checks (pylint, pep8, yamllint, ...) and
# the rest run once, on the pinned core (make sanity).
CORE_SANITY := --test compile --test import --test validate-modules --test ansible-doc --test runtime-metadata
.PHONY: sanity-oldest sanity-newest unit-oldest unit-newest
sanity-cores: sanity-oldest sanity-newest
unit-cores: unit-oldest unit-newest

sanity-oldest: $(OLDEST_VENV)/.installed
	$(call ansible_test_sanity,$(OLDEST_VENV),$(CORE_SANITY))

unit-oldest: collection $(OLDEST_VENV)/.installed
	$(call pytest,$(OLDEST_VENV),-q -p no:cacheprovider tests/unit)

ifneq ($(NEWEST_PYTHON),)
sanity-newest: $(NEWEST_VENV)/.installed
	$(call ansible_test_sanity,$(NEWEST_VENV),$(CORE_SANITY))

unit-newest: collection $(NEWEST_VENV)/.installed
	$(call pytest,$(NEWEST_VENV),-q -p no:cacheprovider tests/unit)
else
sanity-newest unit-newest:
	@echo "$@: SKIPPED ansible-core $(CORE_NEWEST): it needs Python >= 3.12, and pyenv has no 3.12 or 3.13"
endif

# ansible-lint on the whole collection (no path arguments: what .ansible-lint does not exclude).
lint: venv collection
	$(BIN)/ruff check .
	$(BIN)/ruff format --check plugins tests
	$(BIN)/ansible-lint

# The changelog fragments as antsibull-changelog reads them at release time.
changelog-lint: venv
	$(BIN)/antsibull-changelog lint

unit: venv collection
	$(call pytest,$(VENV),-q tests/unit)

# Two workers: the tests mostly wait on ansible-playbook and the servers. Tests of one file
# stay on one worker (module-scoped fixtures run once).
integration: venv system-packages collection
	$(call pytest,$(VENV),-q -n 2 --dist loadfile tests/integration tests/contract)

# make bench: the directory reader against ldapsearch, ldap3 and python-ldap at BENCH_LDAP_SIZES
# entries (tests/bench/ldap_bench.py, about 20 minutes; BENCH_LDAP_SIZES=10000 for a quick look, about
# 2 minutes), then the sync bench (tests/bench/run.py, targets.py). The plots need requirements/bench.txt.
BENCH_LDAP_SIZES ?= 10000,50000,100000
export BENCH_LDAP_SIZES
$(VENV)/.bench-installed: requirements/bench.txt | venv
	$(BIN)/pip install --quiet -r requirements/bench.txt
	touch $@

bench: venv system-packages collection $(VENV)/.bench-installed
	$(BIN)/python tests/bench/run.py

TARBALL := $(BUILD)/dist/idsync-provisioning-$(shell sed -n 's/^version: *//p' galaxy.yml).tar.gz

build: venv
	$(BIN)/ansible-galaxy collection build --force --output-path $(BUILD)/dist

# galaxy-importer, the checks Galaxy runs on an upload, on the built tarball, offline and configured
# as tests/galaxy-importer.cfg says. It exits 0 on a mere warning (an ansible-lint finding, a missing
# changelog, a missing dependency file): any WARNING or ERROR line fails here.
IMPORTER_VENV := $(BUILD)/venv-galaxy-importer
$(IMPORTER_VENV)/.installed: requirements/galaxy-importer.txt
	rm -rf $(@D)
	$(PYTHON) -m venv $(@D)
	$(@D)/bin/pip install --quiet -r requirements/galaxy-importer.txt
	touch $@

galaxy-importer: build $(IMPORTER_VENV)/.installed
	@rm -rf $(BUILD)/galaxy-importer && mkdir -p $(BUILD)/galaxy-importer
	@cd $(BUILD)/galaxy-importer && \
	  GALAXY_IMPORTER_CONFIG=$(CURDIR)/tests/galaxy-importer.cfg PATH=$(abspath $(IMPORTER_VENV))/bin:$$PATH \
	  $(abspath $(IMPORTER_VENV))/bin/python -m galaxy_importer.main $(abspath $(TARBALL)) 2>&1 | tee importer.log
	@if grep -E '^(WARNING|ERROR):' $(BUILD)/galaxy-importer/importer.log; then \
	  echo "galaxy-importer: the findings above would be reported by Galaxy"; exit 1; fi
	@test -s $(BUILD)/galaxy-importer/importer_result.json
	@echo "galaxy-importer: $(TARBALL) imports clean"

# The execution environment: `ansible-builder create` writes the image's build context from
# execution-environment.yml (no container engine needed); `ansible-builder introspect` reads the
# collection's own requirements from the tarball installed, as the image build does.
ee: build
	@rm -rf $(BUILD)/ee
	$(BIN)/ansible-builder create --file execution-environment.yml --context $(BUILD)/ee/context --output-filename Containerfile
	ANSIBLE_COLLECTIONS_PATH=$(BUILD)/ee/collections $(BIN)/ansible-galaxy collection install --force -p $(BUILD)/ee/collections $(TARBALL) >/dev/null
	$(BIN)/ansible-builder introspect --sanitize $(BUILD)/ee/collections | tee $(BUILD)/ee/introspect.txt
	@for name in $$(sed -n 's/^\([A-Za-z0-9_.-]*\).*/\1/p' meta/ee-requirements.txt); do \
	  grep -q "^- '$$name" $(BUILD)/ee/introspect.txt || { echo "ee: $$name missing from the introspected requirements"; exit 1; }; \
	done
	@test -s $(BUILD)/ee/context/Containerfile && test -s $(BUILD)/ee/context/_build/collections/$(notdir $(TARBALL))
	@echo "ee: the build context is in $(BUILD)/ee/context"

clean:
	rm -rf $(BUILD) $(VENV)
