"""Scenarios are data; unknown names and n/a cells give errors a learner can act on."""

from __future__ import annotations

import pytest

import appcoup_lib as ac
from appcoup_lib.runtimes import runtime_class


def test_every_scenario_of_the_design_exists():
    assert list(ac.SCENARIOS) == ["separate", "single-image", "pod", "service", "volume", "federation"]


def test_unknown_scenario_lists_the_valid_ones():
    with pytest.raises(ac.UnknownScenario) as e:
        ac.scenario("pods")
    for name in ac.SCENARIOS:
        assert name in str(e.value)


def test_unknown_runtime_lists_the_valid_ones():
    with pytest.raises(ac.UnknownRuntime) as e:
        ac.runtime("podman")
    assert "local, docker, kubernetes" in str(e.value)


def test_na_cells_say_why_and_where_it_runs(local):
    with pytest.raises(ac.NotSupported) as e:
        local.up("federation")
    msg = str(e.value)
    assert "federation" in msg and "kubernetes" in msg and "Why:" in msg


def test_separate_is_na_on_kubernetes_with_a_reason():
    sc = ac.scenario("separate")
    assert sc.runtimes == ("local", "docker")
    assert "pod" in sc.unsupported["kubernetes"]


@pytest.mark.parametrize("name", list(ac.SCENARIOS))
def test_shape_of_each_scenario(name):
    sc = ac.scenario(name)
    unit, container = sc.entry
    assert sc.container(container).port == 8000, "the learner always reads /data from echo's port"
    assert sc.unit_of(container).name == unit
    names = [c.name for c in sc.containers]
    assert len(names) == len(set(names)), "container names are unique within a scenario"
    for c in sc.containers:
        assert c.volume is None or c.volume in sc.volumes
        assert c.source is None or c.source in {s.name for s in sc.services}


def test_pod_is_two_containers_sharing_one_volume_in_one_unit():
    sc = ac.scenario("pod")
    assert [u.name for u in sc.units] == ["app"]
    gen, echo = sc.containers
    assert (gen.name, echo.name) == ("generator", "echo")
    assert gen.volume == echo.volume == "data" and sc.volumes["data"] == "scratch"
    assert (gen.workdir, echo.workdir) == ("/tmp/out", "/tmp/in")


def test_service_reads_through_the_adapter_by_name():
    sc = ac.scenario("service")
    echo = sc.container("echo")
    assert echo.volume is None and echo.source == "adapter"
    assert sc.unit_of("adapter").name == sc.unit_of("generator").name != sc.unit_of("echo").name


def test_single_image_supervisor_variants():
    sc = ac.scenario("single-image")
    assert sc.container("app").image == "combined"
    assert sc.with_supervisor("init").container("app").image == "combined-init"
    assert sc.container("app").runs == ("generator", "echo")
    with pytest.raises(ValueError):
        sc.with_supervisor("tini")


def test_matrix_matches_the_design():
    rows = {r["scenario"]: r for r in ac.matrix()}
    assert rows["federation"]["local"] == "n/a" and rows["federation"]["kubernetes"] == "yes"
    assert rows["separate"]["kubernetes"] == "n/a"
    assert all(rows[s]["local"] == "yes" for s in ("separate", "single-image", "pod", "service", "volume"))


def test_doctor_reports_every_runtime_and_local_works():
    report = ac.doctor()
    assert [a.runtime for a in report] == ["local", "docker", "kubernetes"]
    assert "local" in report.usable
    for a in report:
        assert a.ok or a.fix, f"{a.runtime} is not usable and the doctor gives no step to fix it"
    assert "runtime('auto') picks" in str(report)


def test_runtime_classes_are_a_registry():
    assert runtime_class("local").name == "local"
