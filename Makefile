# The README's two commands: `make flow` (the main job on the bundled data) and `make test`
# (everything CI checks). Both install missing external tools first.

CARGO ?= cargo
RUN   ?= runs/default

.PHONY: flow quick test tools lint build bench

tools:
	@./scripts/install-tools.sh

build:
	$(CARGO) build --release

flow: tools build
	./target/release/ratflow flow --out $(RUN)

quick: tools build
	./target/release/ratflow flow --quick --out runs/quick

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings

test: tools lint
	$(CARGO) test --release
	./target/release/ratflow flow --quick --out runs/ci --force

bench: build
	$(CARGO) bench --bench golden
