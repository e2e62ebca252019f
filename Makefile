# pymta — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# Debian packages the test suite drives (real peers, never mocks).
DEB_TEST_PACKAGES := openssl swaks isync fetchmail

.PHONY: run demo-remote test venv venv-test debs certs lint typecheck unit integration bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed
venv-test: $(VENV)/.installed-test

# As root, install only what is missing; as a normal user, say what is missing.
debs:
	@missing=""; for p in $(DEB_TEST_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages (install as root):$$missing"; fi; \
	fi

certs: certs/server.pem
certs/server.pem:
	mkdir -p certs
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
	  -addext "subjectAltName=DNS:localhost,DNS:mail.example.test,IP:127.0.0.1" \
	  -keyout certs/server.key -out certs/server.pem 2>/dev/null
	chmod 600 certs/server.key

run: venv certs
	mkdir -p var
	$(VENV)/bin/pymta serve -c conf/dev.toml

# The rest of the world for `make run`'s outbound mail (README, "Sending mail").
demo-remote: venv certs
	$(PY) scripts/demo_remote.py

lint: venv-test
	$(VENV)/bin/ruff check pymta tests benchmarks scripts
	$(VENV)/bin/ruff format --check pymta tests benchmarks scripts

typecheck: venv-test
	$(VENV)/bin/mypy

test: debs venv-test lint typecheck
	$(VENV)/bin/pytest -q tests

bench: venv certs
	$(PY) benchmarks/smtp_inbound.py

clean:
	rm -rf $(VENV) var certs .pytest_cache .mypy_cache .ruff_cache
