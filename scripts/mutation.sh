#!/usr/bin/env bash
# Mutation testing of the fold's rules (docs/proof.md, "Mutation testing"). Not in CI:
# it takes about nine minutes on two cores for the state's modules (docs/proof.md).
#
#   scripts/mutation.sh                    # every module of [tool.mutmut] only_mutate
#   scripts/mutation.sh _summary _step     # some of them
#   EVERY=3 scripts/mutation.sh _lifecycle # a deterministic sample: every 3rd mutant
#   CHILDREN=1 scripts/mutation.sh         # mutants run at once (default 2)
#   SURVIVORS=1 scripts/mutation.sh        # run the survivors again (after adding tests)
#
# mutmut (the `mutation` extra) copies the sources to mutants/, makes each mutant, and
# reruns the state's tests that reach it ([tool.mutmut] in pyproject.toml) under the
# `mutation` Hypothesis profile (tests/conftest.py: 30 derandomized examples). It
# remembers verdicts: a run that was stopped goes on where it was; to start afresh
# (after changing the sources), `rm -rf mutants` first.
# The table at the end counts the verdicts of each module; `python -m mutmut show NAME`
# prints a mutant, `python -m mutmut browse` walks them.
set -euo pipefail
cd "$(dirname "$0")/.."

export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-mutation}"
children="${CHILDREN:-2}"
every="${EVERY:-1}"
modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
    modules=(_summary _state _step _times _reconcile _lifecycle _lifecycle_definition _lifecycle_graph)
fi

# mutmut reruns every mutant it is given by name: give it those without a verdict
# (every Nth of each module, in mutmut's order: the same sample on every run of the same
# sources), or with SURVIVORS=1 those that survived (after adding tests).
[ -d mutants ] || python -m mutmut run --max-children "$children" "cardflow._none_" >/dev/null 2>&1 || true
if [ "${SURVIVORS:-0}" = 1 ]; then
    select=(--survivors)
else
    select=(--every "$every")
fi
mapfile -t names < <(
    python -m mutmut results --all true |
        python scripts/mutation_names.py "${select[@]}" "${modules[@]}"
)
if [ ${#names[@]} -gt 0 ]; then
    python -m mutmut run --max-children "$children" "${names[@]}"
fi

python -m mutmut results --all true | python scripts/mutation_names.py --table "${modules[@]}"
