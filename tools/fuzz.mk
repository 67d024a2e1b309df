# Fuzzing, for `include tools/fuzz.mk` in the top-level Makefile.
#
#   make fuzz                 every target for FUZZ_SECONDS (180) each
#   make fuzz-FuzzParams      one target
#   make fuzz-ci              every target for FUZZ_CI_SECONDS (25) each, one after another: CI's
#                             smoke run (.ci/run); it fails when a target crashes, leaks, times out
#                             or runs out of memory
#
# Adding a loader's fuzz target takes one line here, plus its executable target in Package.swift
# (Sources/FuzzX/main.swift, as Sources/FuzzNPY/main.swift is written) and its seeds in
# Tests/Fuzz/corpus/x/ (see tools/fuzz.sh for the naming).
FUZZ_TARGETS += FuzzNPY
FUZZ_TARGETS += FuzzParams
FUZZ_TARGETS += FuzzSymbol
FUZZ_TARGETS += FuzzGraph

FUZZ_SECONDS ?= 180
FUZZ_CI_SECONDS ?= 25

.PHONY: fuzz fuzz-ci $(addprefix fuzz-,$(FUZZ_TARGETS))
fuzz: $(addprefix fuzz-,$(FUZZ_TARGETS))
$(addprefix fuzz-,$(FUZZ_TARGETS)): fuzz-%:
	tools/fuzz.sh $* $(FUZZ_SECONDS)

# A shell loop rather than prerequisites, so that `make -j` cannot run two fuzzers at once.
fuzz-ci:
	set -e; for target in $(FUZZ_TARGETS); do tools/fuzz.sh $$target $(FUZZ_CI_SECONDS); done
