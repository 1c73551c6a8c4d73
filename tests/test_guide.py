"""Notebook 07's decision guide, read from a real scorecard; and the spec's pictures side by side."""

from __future__ import annotations

import re

import pytest

import appcoup_lib as ac
from appcoup_lib import guide, loose


@pytest.fixture(scope="module")
def card():
    return loose.scorecard(ac.runtime("local"), ["pod", "service"], interval=0.2, mb=0.5,
                           recovery_timeout=5.0, progress=None)


@pytest.mark.local
@pytest.mark.slow
def test_the_guide_quotes_a_real_scorecard(card):
    rows = {r["scenario"]: r for r in card}
    g = guide.decision_guide(card)
    text = str(g)
    said = dict(g.lines)
    # Every sentence quotes this table: the numbers in it are the table's own.
    assert f"{rows['pod']['first number (s)']} s in a pod" in said["Colocation"]
    assert f"{rows['service']['first number (s)']} s through a Service" in said["Colocation"]
    fastest = min(("pod", "service"), key=lambda s: rows[s]["first number (s)"])
    assert said["Fastest"].startswith(f"to a first number here: {fastest} ")
    # On local, a pod's copy is a copy of its generator; service's copies of echo share one.
    assert rows["pod"]["2 replicas serve"] == "different numbers"
    assert rows["service"]["2 replicas serve"] == "the same numbers"
    assert "the same numbers in service" in said["Scaling"] and "its own in pod" in said["Scaling"]
    assert rows["service"]["generator restarts on upgrade"] == 0
    calm = ", ".join(s for s in rows if rows[s]["generator restarts on upgrade"] == 0)
    assert f"did not in {calm}." in said["Ownership"] or f"running in {calm}:" in said["Ownership"]
    assert set(g.topics()) <= set(guide.TOPICS)
    assert "<ul class='appcoup-guide'>" in g._repr_html_() and text.startswith("- ")
    # and the exercise of 07 agrees with the same two columns
    from appcoup_lib.exercises import check_loose_scenarios

    assert check_loose_scenarios(card, guess=["service"]).ok is True


def test_the_guide_leaves_out_what_the_table_cannot_answer():
    g = guide.decision_guide([{"scenario": "pod", "first number (s)": 0.4, "recovery (s)": "not within 5 s"}])
    assert g.topics() == ["Recovery", "Fastest"]
    assert "within 5 s in pod" in dict(g.lines)["Recovery"]
    assert str(guide.decision_guide([])).startswith("(the scorecard answers none")


@pytest.mark.parametrize("runtime", ["local", "docker", "kubernetes"])
def test_pictures_show_every_scenario_of_a_runtime_side_by_side(runtime):
    names = [s.name for s in ac.SCENARIOS.values() if runtime in s.runtimes]
    row = guide.pictures(names, runtime)
    page = row._repr_html_()
    assert page.count("<svg") == len(names) and "display:flex" in page
    for name in names:
        assert re.search(rf"{re.escape(name)} on {runtime}", page)
    assert guide.picture("pod", runtime)._repr_html_().count("<svg") == 1
