# lipdub: make demo | make test | make bench
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TORCH_WHEEL := $(firstword $(wildcard /opt/wheels/torch-2.13.0+cpu-cp311-*.whl))

.PHONY: install system demo test bench clean

install: system $(BIN)/.installed

# ffmpeg (decode/encode), espeak-ng (the demo's speech) and sox (the audio tests' media) from the
# system's packages when missing: on a fresh machine the default test run skips only GPU and
# root-only tests
system:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null && command -v espeak-ng >/dev/null \
	  && command -v sox >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq ffmpeg espeak-ng sox >/dev/null; }
	@$(PY) -c "import ensurepip, venv" 2>/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv >/dev/null; }

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || \
	  $(BIN)/pip install -q $(if $(TORCH_WHEEL),"$(TORCH_WHEEL)","torch==2.13.0")
	$(BIN)/pip install -q -e '.[neural,test]'
	@touch $@

demo: install
	$(BIN)/lipdub demo --out out/demo

# pytest exits 5 when it collects no tests: not a failure of the suite
test: install
	$(BIN)/python -m pytest -q || { rc=$$?; [ $$rc -eq 5 ] && echo "no tests collected"; [ $$rc -eq 5 ]; }

bench: install
	@if [ -d ../shared/data/clips ]; then \
	  mkdir -p out && sh ../shared/bench/setup.sh && \
	  /tmp/lipbench-venv/bin/python ../shared/bench/bench.py --clips ../shared/data/clips \
	    --cmd '$(CURDIR)/$(BIN)/lipdub run {inp} --audio {aud} -o {out} --quiet' --max-seconds 20 \
	    > out/bench.jsonl; tail -n 1 out/bench.jsonl; \
	else echo "../shared/data/clips not found: skipping the lip-sync benchmark"; fi
	$(BIN)/python -m lipdub.benchspeed

clean:
	rm -rf out .pytest_cache
