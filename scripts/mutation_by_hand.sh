#!/usr/bin/env bash
# The mutants out of mutmut's reach (docs/proof.md, "Mutation testing"): code that runs
# once, when cardflow is imported (the D1 lifecycle's definition), runs before mutmut
# switches a mutant on, so mutmut reports them as survivors. This applies each of them
# to a copy of the sources in a temporary directory (`python -m mutmut apply`), runs the
# mutation tests of [tool.mutmut] against the copy, and says what became of it.
#
#   scripts/mutation_by_hand.sh                   # every mutant of the D1 definition
#   scripts/mutation_by_hand.sh NAME...           # these mutants (as `mutmut results` names them)
#
# Run scripts/mutation.sh first (it makes mutants/). The worktree's sources are never
# touched. Verdicts: "refused at import" (importing cardflow fails), "killed" (a test
# fails: the first one is named), "survived".
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d mutants ]; then
    echo "no mutants/: run scripts/mutation.sh first" >&2
    exit 2
fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    mapfile -t names < <(
        python -m mutmut results --all true |
            awk -F': ' '{ sub(/^ +/, "", $1) } index($1, "cardflow._lifecycle.x__d1_lifecycle__") == 1 { print $1 }'
    )
fi
mapfile -t tests < <(
    python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["tool"]["mutmut"]["pytest_add_cli_args_test_selection"], sep="\n")'
)
work="$(mktemp -d "${TMPDIR:-/tmp}/cardflow-mutants.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -r tests pyproject.toml mutants "$work/"

export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-mutation}" PYTHONPATH="$work/src"
declare -A count=()
for name in "${names[@]}"; do
    rm -rf "$work/src" && cp -r src "$work/src"
    (cd "$work" && python -m mutmut apply "$name" >/dev/null)
    set +e
    out="$(cd "$work" && timeout 900 python -m pytest -x -q -p no:cacheprovider "${tests[@]}" 2>&1)"
    rc=$?
    set -e
    if [ $rc -eq 0 ]; then
        verdict="survived"
    elif ! (cd "$work" && python -c "import cardflow" >/dev/null 2>&1); then
        verdict="refused at import"
    else
        verdict="killed"
    fi
    count[$verdict]=$(( ${count[$verdict]:-0} + 1 ))
    first="$(printf '%s\n' "$out" | grep -m1 -E '^FAILED ' | cut -d' ' -f2 || true)"
    echo "$name: $verdict${first:+ ($first)}"
done
echo
echo "${#names[@]} mutants: killed ${count[killed]:-0}, refused at import ${count[refused at import]:-0}, survived ${count[survived]:-0}"
