"""The pytest plugin: the cardflow_check fixture and the --cardflow-examples option."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

SUITE = textwrap.dedent(
    """
    from hypothesis import settings

    import cardflow
    from cardflow.testing._check import check_handler  # where the fixture takes it from


    class Handler:
        def __init__(self):
            self.tracker = cardflow.Tracker()

        def handle(self, body):
            self.tracker.ingest(body)

        def status(self, card_id):
            state = self.tracker.get(card_id)
            return None if state is None else state.status


    class Counting:
        def __init__(self):
            self.made = 0

        def __call__(self):
            self.made += 1
            return Handler()


    def test_the_fixture_runs_the_examples_asked_for(cardflow_check, pytestconfig):
        factory = Counting()
        coverage = cardflow_check(factory, settings=settings(max_examples=3, database=None))
        asked = pytestconfig.getoption("cardflow_examples")
        assert factory.made == 2 + (asked or 3)
        assert coverage.walks >= 1


    def test_an_explicit_number_wins(cardflow_check):
        factory = Counting()
        cardflow_check(factory, max_examples=4, settings=settings(database=None))
        assert factory.made == 2 + 4


    def test_it_is_check_handler_with_the_option(cardflow_check, pytestconfig):
        asked = pytestconfig.getoption("cardflow_examples")
        if asked is None:
            assert cardflow_check is check_handler
        else:
            assert cardflow_check.func is check_handler
            assert cardflow_check.keywords == {"max_examples": asked}
    """
)


@pytest.mark.parametrize("option", [[], ["--cardflow-examples=7"]])
def test_the_fixture_and_the_option(pytester: pytest.Pytester, option: list[str]) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider", *option)
    result.assert_outcomes(passed=3)


def test_the_option_is_documented_and_checked(pytester: pytest.Pytester) -> None:
    shown = pytester.runpytest("--help")
    shown.stdout.fnmatch_lines(["*--cardflow-examples=N*"])
    refused = pytester.runpytest("--cardflow-examples=0")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*--cardflow-examples*"])
