# Two commands matter: `make run` (a server on embedded SQLite) and `make test` (everything).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

# The web UI (web/) is built into the package, where `chatd server` serves it from. Its API
# types come from the server's OpenAPI document, so the API's Python sources are inputs too.
WEB_BUILT := src/chatd/web_dist/index.html
WEB_DEPS := web/node_modules/.installed
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html \
	web/package.json web/vite.config.ts web/tsconfig.json \
	$(shell find src/chatd/api src/chatd/sdk -name '*.py' 2>/dev/null)
# Node.js 20 or newer, else empty.
NODE_OK := $(shell node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null && echo yes)
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test lint typecheck web web-test chromium dist clean

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

$(WEB_DEPS): web/package.json web/package-lock.json
	cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-fund --no-audit --loglevel=error
	@touch $@

$(WEB_BUILT): $(STAMP) $(WEB_DEPS) $(WEB_SOURCES)
	@mkdir -p web/generated
	$(VENV)/bin/chatd dev openapi > web/generated/openapi.json
	cd web && npm run --silent build

web: $(WEB_BUILT)

run: $(STAMP)
ifeq ($(NODE_OK),yes)
	@$(MAKE) --no-print-directory web
else
	@echo "Node.js 20+ not found: the server starts without its web UI (see README)."
endif
	$(VENV)/bin/chatd server

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy src

# Browser tests: Playwright (from npm) drives Debian's Chromium against a real server.
chromium:
	@test -x $(CHROMIUM) || { echo "The browser tests need Chromium at $(CHROMIUM) (apt-get install chromium)."; exit 1; }

# Only the browser tests (`make test` runs them too, each spec file as one pytest item).
web-test: $(WEB_BUILT) chromium
	cd web && CHATD_CHROMIUM=$(CHROMIUM) CHATD_PYTHON=$(CURDIR)/$(VENV)/bin/python npx playwright test

# Two workers, each taking whole test files (a file's module fixtures, such as one server
# for its tests, stay in one process; a browser spec file is one item), in the order
# tests/scheduling.py sets: the files that start real processes first.
test: lint typecheck $(WEB_BUILT) chromium
	CHATD_CHROMIUM=$(CHROMIUM) $(VENV)/bin/pytest -n 2 --dist loadfile --no-loadscope-reorder

# A wheel in dist/ that carries the built web UI (pip install users need no Node.js).
dist: $(WEB_BUILT)
	rm -rf dist build
	$(VENV)/bin/pip wheel --quiet --disable-pip-version-check --no-deps -w dist .
	@ls dist/*.whl

clean:
	rm -rf $(VENV) web/node_modules src/chatd/web_dist dist build
