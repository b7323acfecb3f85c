# The README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
.PHONY: demo test test-unit test-integration compat sanity lint molecule bench image bootstrap clean

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

bootstrap:
	bash scripts/bootstrap.sh

test-unit:
	bash scripts/test.sh bootstrap ruff unit

test-integration:
	bash scripts/test.sh bootstrap integration

compat:
	bash scripts/test.sh bootstrap compat

sanity:
	bash scripts/test.sh bootstrap sanity

lint:
	bash scripts/test.sh bootstrap argspec changelog lint

molecule:
	bash scripts/test.sh bootstrap molecule

image:
	bash scripts/bootstrap.sh && . scripts/env.sh && bash scripts/build-image.sh

bench:
	bash scripts/bootstrap.sh && . scripts/env.sh && python tests/bench/run.py

clean:
	rm -rf .build .pytest_cache .ruff_cache reports
