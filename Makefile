# The README's two commands: `make flow` (the main job on the bundled data) and `make test`
# (everything CI checks). Both install missing external tools first.

CARGO ?= cargo
RUN   ?= runs/default

.PHONY: flow quick test tools lint build bench

tools:
	@./scripts/install-tools.sh

build:
	$(CARGO) build --release

# The bundled default: the MNIST CNN trained here with RAT, and MLPerf Tiny's DS-CNN imported.
flow: tools build
	./target/release/ratflow flow --out $(RUN)/mnist_cnn
	./target/release/ratflow flow --model models/tiny/kws_ref_model.tflite --out $(RUN)/kws

quick: tools build
	./target/release/ratflow flow --quick --out runs/quick/mnist_cnn
	./target/release/ratflow flow --quick --model models/tiny/kws_ref_model.tflite --out runs/quick/kws

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings

test: tools lint
	$(CARGO) test --release
	./target/release/ratflow flow --quick --out runs/ci/mnist_cnn --force
	./target/release/ratflow flow --quick --model models/tiny/kws_ref_model.tflite --out runs/ci/kws --force

bench: build
	$(CARGO) bench --bench golden
