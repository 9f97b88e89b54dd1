"""Sample and count mutmut's mutants, for scripts/mutation.sh.

Reads ``python -m mutmut results --all true`` (one ``name: verdict`` a line) on stdin.

    python scripts/mutation_names.py --every 3 _lifecycle   # every 3rd mutant, those not run yet
    python scripts/mutation_names.py --survivors _summary   # the survivors' names
    python scripts/mutation_names.py --table _summary _step # a Markdown table of verdicts
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter

_LINE = re.compile(r"^\s*(cardflow\.(\w+)\.\S+): (.+?)\s*$")
_COLUMNS = ("killed", "survived", "timeout", "suspicious", "no tests", "not checked")


def _mutants(lines: list[str], modules: list[str]) -> list[tuple[str, str, str]]:
    """(module, name, verdict) of the given modules' mutants, in mutmut's order."""
    found = []
    for line in lines:
        match = _LINE.match(line)
        if match and match.group(2) in modules:
            found.append((match.group(2), match.group(1), match.group(3)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--every", type=int, help="print every Nth mutant's name of each module")
    mode.add_argument("--survivors", action="store_true", help="print the survivors' names")
    mode.add_argument("--table", action="store_true", help="print the verdicts as a table")
    parser.add_argument("modules", nargs="+", help="modules, e.g. _summary")
    args = parser.parse_args()
    mutants = _mutants(sys.stdin.read().splitlines(), args.modules)
    if args.survivors:
        for _, name, verdict in mutants:
            if verdict == "survived":
                print(name)
        return
    if args.every:
        for module in args.modules:
            sample = [m for m in mutants if m[0] == module][:: args.every]
            # Those without a verdict yet: a run that was stopped goes on where it was.
            for _, name, verdict in sample:
                if verdict == "not checked":
                    print(name)
        return
    # A mutant that runs past its time limit (a loop that never ends) is caught too.
    print("| module | mutants | " + " | ".join(_COLUMNS) + " | caught, of those run |")
    print("|---" * (len(_COLUMNS) + 3) + "|")
    for module in args.modules:
        verdicts = Counter(verdict for mod, _, verdict in mutants if mod == module)
        ran = sum(verdicts.values()) - verdicts["not checked"]
        caught = verdicts["killed"] + verdicts["timeout"]
        score = f"{caught / ran:.1%}" if ran else "-"
        cells = " | ".join(str(verdicts[c]) for c in _COLUMNS)
        print(f"| `{module}.py` | {sum(verdicts.values())} | {cells} | {score} |")
    others = Counter(v for _, _, v in mutants) - Counter(dict.fromkeys(_COLUMNS, 10**9))
    if others:
        print(f"other verdicts: {dict(others)}", file=sys.stderr)


if __name__ == "__main__":
    main()
