# The two set-up commands of the README: `make run` (main job) and `make test` (test suite).
# Both create .venv on first use; later calls reuse it until pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench clean default-statistics pretrained

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/xrdgen run

test: $(STAMP)
	$(PY) -m pytest -q tests

# The statistics shipped as `--statistics default` (xrdgen/data/), rebuilt from ../shared/data:
# mp26k read on Ray (entries and grouping cached in runs/), ICSD metadata, configs/default_statistics.yaml.
SHARED ?= ../shared/data
default-statistics: $(STAMP)
	$(VENV)/bin/xrdgen stats build $(SHARED)/mp26k --metadata $(SHARED)/db_metadata/icsd_filtered_info_2025_v3.json.gz \
		--config configs/default_statistics.yaml --entries-cache runs/mp26k.entries.json.gz \
		-o runs/default_statistics/statistics.json.gz
	$(VENV)/bin/xrdgen stats ship runs/default_statistics/statistics.json.gz

# The model shipped in the package (xrdgen/data/pretrained/, docs/model_card.md): stage 1 on pure
# patterns, stage 2 in the measured preset from stage 1's weights (both resumable), the temperature
# fitted on rruff_dev, then copied into the package without optimizer state (about 90 min on 2 cores).
pretrained: $(STAMP)
	$(VENV)/bin/xrdgen train default --config configs/pretrained_pure.yaml --validation $(SHARED)/rruff_dev
	$(VENV)/bin/xrdgen train default --config configs/pretrained.yaml --validation $(SHARED)/rruff_dev
	$(VENV)/bin/xrdgen calibrate runs/pretrained --measured $(SHARED)/rruff_dev
	$(VENV)/bin/xrdgen model ship runs/pretrained --float16

runs/mp26k.entries.json.gz:
	$(MAKE) default-statistics

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) runs results
