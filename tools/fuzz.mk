# Fuzzing, for `include tools/fuzz.mk` in the top-level Makefile.
#
#   make fuzz                 every target for FUZZ_SECONDS each
#   make fuzz-FuzzParams      one target
#
# Adding a loader's fuzz target takes one line here, plus its executable target in Package.swift
# (Sources/FuzzX/main.swift, as Sources/FuzzNPY/main.swift is written) and its seeds in
# Tests/Fuzz/corpus/x/ (see tools/fuzz.sh for the naming).
FUZZ_TARGETS += FuzzNPY
FUZZ_TARGETS += FuzzParams
FUZZ_TARGETS += FuzzSymbol

FUZZ_SECONDS ?= 180

.PHONY: fuzz $(addprefix fuzz-,$(FUZZ_TARGETS))
fuzz: $(addprefix fuzz-,$(FUZZ_TARGETS))
$(addprefix fuzz-,$(FUZZ_TARGETS)): fuzz-%:
	tools/fuzz.sh $* $(FUZZ_SECONDS)
