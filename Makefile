# Two commands matter: `make run` (a server on embedded SQLite) and `make test` (everything).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint typecheck clean

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/chatd server

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy src

# Two workers, each taking whole test files (a file's module fixtures, such as one server
# for its tests, stay in one process).
test: lint typecheck
	$(VENV)/bin/pytest -n 2 --dist loadfile

clean:
	rm -rf $(VENV)
