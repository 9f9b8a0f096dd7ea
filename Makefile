# make demo   set up .venv and run the main job on the default sample model
# make test   set up .venv and run the test suite (what CI runs): the fast tier first, then the rest
# make test-fast   the fast tier alone (unit tests, no conversions; under a minute): run it after every change
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= demo-out

.PHONY: setup demo test test-fast test-all bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/edgeport convert sample:mobile_cnn --to torchscript,onnx,saved_model,tflite -o $(DEMO_OUT)
	$(BIN)/edgeport validate $(DEMO_OUT)

test: setup
	bash scripts/run_tests.sh

test-fast: setup
	EDGEPORT_FUZZ_EXAMPLES=$${EDGEPORT_FUZZ_EXAMPLES:-200} $(BIN)/python -m pytest -q -x -m "fast and not slow" -p no:cacheprovider tests/unit

test-all: setup
	$(BIN)/python -m pytest -q -m "slow or not slow"

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
