#!/usr/bin/env bash
# Mutation testing of the fold's rules (docs/proof.md, "Mutation testing"). Not in CI:
# it takes about half an hour on two cores for the state's modules.
#
#   scripts/mutation.sh                    # every module of [tool.mutmut] only_mutate
#   scripts/mutation.sh _summary _step     # some of them
#   EVERY=3 scripts/mutation.sh _lifecycle # a deterministic sample: every 3rd mutant
#   CHILDREN=1 scripts/mutation.sh         # mutants run at once (default 2)
#
# mutmut (the `mutation` extra) copies the sources to mutants/, makes each mutant, and
# reruns the state's tests that reach it ([tool.mutmut] in pyproject.toml) under the
# `mutation` Hypothesis profile (tests/conftest.py: 30 derandomized examples). It
# remembers verdicts: run it again after changing tests with `rm -rf mutants` first.
# The table at the end counts the verdicts of each module; `python -m mutmut show NAME`
# prints a mutant, `python -m mutmut browse` walks them.
set -euo pipefail
cd "$(dirname "$0")/.."

export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-mutation}"
children="${CHILDREN:-2}"
every="${EVERY:-1}"
modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
    modules=(_summary _state _step _times _reconcile _lifecycle)
fi

patterns=()
for module in "${modules[@]}"; do
    patterns+=("cardflow.${module}.*")
done

if [ "$every" -gt 1 ]; then
    # Generate the mutants (running none of them), then pick every Nth of each module
    # in mutmut's own order: the same sample on every run of the same sources.
    [ -d mutants ] || python -m mutmut run --max-children "$children" "cardflow._none_" >/dev/null 2>&1 || true
    mapfile -t names < <(
        python -m mutmut results --all true |
            python scripts/mutation_names.py --every "$every" "${modules[@]}"
    )
    if [ ${#names[@]} -gt 0 ]; then
        python -m mutmut run --max-children "$children" "${names[@]}"
    fi
else
    python -m mutmut run --max-children "$children" "${patterns[@]}"
fi

python -m mutmut results --all true | python scripts/mutation_names.py --table "${modules[@]}"
