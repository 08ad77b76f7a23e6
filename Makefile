# The two set-up commands (see README): `make demo` runs the main job end to end, `make test` the tests.
PY := .venv/bin/python

.PHONY: bootstrap demo test

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	$(PY) -m influencers.demo

test: bootstrap
	$(PY) -m pytest
