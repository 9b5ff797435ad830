# lipdub: make demo | make test | make bench
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_WHEEL := $(wildcard /opt/wheels/torch-2.13.0+cpu-cp311-*.whl)

.PHONY: install demo test bench clean

install: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	@command -v ffmpeg >/dev/null && command -v espeak-ng >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq ffmpeg espeak-ng >/dev/null; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(if $(TORCH_WHEEL),$(TORCH_WHEEL),"torch==2.13.0")
	$(BIN)/pip install -q -e '.[neural,test]'
	@touch $@

demo: install
	$(BIN)/lipdub demo --out out/demo

test: install
	$(BIN)/python -m pytest -q

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
