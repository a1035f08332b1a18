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

all: test

venv: $(VENV)/.installed
$(VENV)/.installed: requirements/dev.txt requirements/runtime.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@

# slapd and ldap-utils come from Debian; installed only when missing.
system-packages:
	@if [ ! -x /usr/sbin/slapd ] || ! command -v ldapsearch >/dev/null; then \
	  echo "installing slapd and ldap-utils"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slapd ldap-utils >/dev/null; \
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

test: venv system-packages collection sanity lint unit integration
	@echo "make test: all checks passed"

# ansible-test resolves symlinks, so it runs on a copy of the tracked files, made outside the
# checkout (inside a git work tree it would only see git's files) and fresh for every run.
# Its pip bootstrap download is replaced by ensurepip (see shared ENVIRONMENT.md).
sanity: venv
	@mkdir -p $(HOME)/.ansible/test/cache
	@printf 'import ensurepip\nensurepip.bootstrap(upgrade=True)\n' > $(HOME)/.ansible/test/cache/get_pip_24_2.py
	@root=$$(mktemp -d -t idsync-sanity-XXXXXX); tree=$$root/ansible_collections/idsync/provisioning; \
	mkdir -p $$tree; \
	git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t $$tree/; \
	status=0; (cd $$tree && $(abspath $(BIN))/ansible-test sanity --requirements --python 3.11 --color no) || status=$$?; \
	rm -rf $$root; exit $$status

lint: venv collection
	$(BIN)/ruff check .
	$(BIN)/ruff format --check plugins tests
	$(BIN)/ansible-lint roles playbooks extensions

unit: venv collection
	$(BIN)/pytest -q tests/unit

# Two workers: the tests mostly wait on ansible-playbook and the servers. Tests of one file
# stay on one worker (module-scoped fixtures run once).
integration: venv system-packages collection
	$(BIN)/pytest -q -n 2 --dist loadfile tests/integration tests/contract

bench: venv system-packages collection
	$(BIN)/python tests/bench/run.py

build: venv
	$(BIN)/ansible-galaxy collection build --force --output-path $(BUILD)/dist

clean:
	rm -rf $(BUILD) $(VENV)
