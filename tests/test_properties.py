"""Property-based: generated names, ports, intervals, scenarios, supervisors and whole CLI argument
lists thrown at the API (local runtime) and at the CLI. Every outcome is a success or an
AppcoupError (CLI: exit 0, 1 with an AppcoupError message, or 2 for bad usage), never another
exception, and nothing is left running afterwards.

Bounded: a few dozen examples each, no deadline (a success starts real processes).
"""

from __future__ import annotations

import contextlib
import io
import math
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import appcoup_lib as ac
from appcoup_lib import cli
from appcoup_lib.paths import state_dir
from appcoup_lib.runtimes.local import LocalRuntime, strays

pytestmark = pytest.mark.local
STATS: Counter[str] = Counter()

# Each field: a valid value, or (when the example corrupts that field) a bad one.
VALID = {
    "scenario": st.sampled_from(["pod", "volume", "single-image", "separate", "service"]),
    "name": st.one_of(st.none(), st.from_regex(r"\Aappcoup-hyp-[a-z0-9]{1,8}\Z")),
    "port": st.just(0),  # any free port: a fixed one could be another session's
    "interval": st.sampled_from([0.2, 0.5, 1, "0.3"]),
    "supervisor": st.sampled_from(["naive", "init"]),
}
BAD = {
    "scenario": st.one_of(st.text(max_size=12), st.sampled_from(["federation", "Pod", "pods", ""]), st.integers()),
    "name": st.one_of(st.text(alphabet="abcXYZ019-._/ \\é\x00", max_size=45), st.integers(),
                      st.sampled_from(["../../x", "a" * 41, "-a", "a-", "UP", ""])),
    "port": st.one_of(st.integers(max_value=-1), st.integers(min_value=65536), st.booleans(),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6), st.none()),
    "interval": st.one_of(st.floats(max_value=0), st.floats(min_value=3600.5), st.just(float("nan")),
                          st.just(float("inf")), st.text(alphabet="ab-", max_size=5), st.none(), st.booleans()),
    "supervisor": st.one_of(st.text(max_size=6), st.none(), st.integers()),
}
FIELDS = list(VALID)


def _valid(kind: str, value: object) -> bool:
    """Whether a value is one the API accepts (to count the bad ones tried)."""
    if kind == "name":
        from appcoup_lib.inputs import DNS1123, NAME_MAX

        return value is None or (isinstance(value, str) and len(value) <= NAME_MAX and bool(DNS1123.match(value)))
    if kind == "port":
        return value == 0 and not isinstance(value, bool) and isinstance(value, int)
    if kind == "interval":
        try:
            f = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        return not isinstance(value, bool) and math.isfinite(f) and 0 < f <= 3600
    if kind == "scenario":
        return value in ac.SCENARIOS
    return value in ("naive", "init")


def _left() -> list:
    return strays(under=state_dir())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(corrupt=st.sets(st.sampled_from(FIELDS), max_size=3), data=st.data())
def test_api_up_succeeds_or_raises_an_appcoup_error(local, corrupt, data) -> None:
    args = {f: data.draw((BAD if f in corrupt else VALID)[f], label=f) for f in FIELDS}
    bad = [f for f in FIELDS if not _valid(f, args[f])]
    STATS["api examples"] += 1
    STATS["api bad inputs"] += len(bad)
    scenario = args.pop("scenario")
    try:
        app = local.up(scenario, progress=False, **args)
    except ac.AppcoupError as e:
        STATS["api refused"] += 1
        assert e.what and (e.fix or e.why), "every error says what failed and what to do"
    else:
        STATS["api started"] += 1
        assert not bad, f"accepted bad input {bad}: {args}"
        app.down()
    assert not _left(), "something was left running"


JUNK = st.one_of(
    st.sampled_from(["--port", "--interval", "--name", "--supervisor", "--address", "--all", "0", "-1", "nan",
                     "inf", "1e9", "../x", "-r", "--help-me", "--", "database", "pod"]),
    st.text(alphabet="ab-/.%0", max_size=6),
)
FLAGS = {
    "--port": st.sampled_from(["0", "-1", "70000", "abc", "1.5", ""]),
    "--interval": st.sampled_from(["0.2", "0.5", "0", "-1", "nan", "inf", "1e9", "x"]),
    "--name": st.one_of(st.sampled_from(["appcoup-hyp-cli", "../x", "UP", "a" * 41, ""]),
                        st.text(alphabet="ab-/.", max_size=8)),
    "--supervisor": st.sampled_from(["naive", "init", "tini"]),
    "--address": st.sampled_from(["127.0.0.1", "0.0.0.0", "everywhere", "::1"]),
}
SCENARIO_VERBS = {"up", "down", "kill", "data", "events"}
VERBS = ["up", "down", "kill", "data", "events", "clean"]


@st.composite
def argvs(draw) -> list[str]:  # type: ignore[no-untyped-def]
    verb = draw(st.sampled_from(VERBS))
    argv = [verb]
    if verb in SCENARIO_VERBS:
        argv.append(draw(st.one_of(VALID["scenario"], st.sampled_from(["federation", "pods", "x"]))))
    if verb == "kill":
        argv.append(draw(st.sampled_from(["echo", "generator", "app", "adapter", "database"])))
    for flag in draw(st.lists(st.sampled_from(list(FLAGS)), max_size=3, unique=True)):
        argv += [flag, draw(FLAGS[flag])]
    if verb == "clean" and draw(st.booleans()):
        argv.append("--all")
    argv += draw(st.lists(JUNK, max_size=2))
    # Always on the local runtime (the last --runtime wins): the fuzzing must not reach a shared engine.
    return [*argv, "--runtime", "local"]


def _main(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:  # argparse: bad usage
            code = e.code if isinstance(e.code, int) else 2
    return code, err.getvalue()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argv=argvs())
def test_cli_exits_0_1_or_2_and_leaves_nothing(argv: list[str]) -> None:
    STATS["cli argument lists"] += 1
    code, err = _main(argv)
    STATS[f"cli exit {code}"] += 1
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err and "unexpected error" not in err, (argv, err)
    if code == 1:
        assert err.startswith("appcoup: ") and "What to do" in err, (argv, err)
    if argv[0] == "up" and code == 0:
        STATS["cli started"] += 1
        LocalRuntime.clean()  # the learner would `appcoup down`: here every started app goes
    assert not _left(), (argv, "left running")


def test_zz_report_property_stats(capsys) -> None:
    """Print the tally of the two properties above (run in the same session)."""
    with capsys.disabled():
        print("\nproperty stats:", dict(sorted(STATS.items())))
