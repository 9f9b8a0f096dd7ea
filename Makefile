# make demo   set up .venv and run the main job on the default sample model
# make test   set up .venv and run the test suite (what CI runs)
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= demo-out

.PHONY: setup demo test test-all bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/edgeport convert sample:mobile_cnn --to torchscript,onnx,saved_model,tflite -o $(DEMO_OUT)
	$(BIN)/edgeport validate $(DEMO_OUT)

test: setup
	bash scripts/run_tests.sh

test-all: setup
	$(BIN)/python -m pytest -q -m "slow or not slow"

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
