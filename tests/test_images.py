"""Images on a real Docker engine: tags from inputs, no needless rebuilds, offline bases, build errors."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from appcoup_lib import images
from appcoup_lib.errors import BuildError
from appcoup_lib.paths import images_dir

pytestmark = pytest.mark.docker


@pytest.fixture
def client():
    from appcoup_lib.runtimes.docker import connect

    return connect()


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A private copy of images/ to change."""
    ctx = tmp_path / "images"
    shutil.copytree(images_dir(), ctx)
    return ctx


def test_tags_name_their_inputs_never_latest() -> None:
    for name in images.NAMES:
        tag = images.tag_for(name)
        repo, _, version = tag.partition(":")
        assert repo == f"appcoup/{name}"
        assert len(version) == 12 and all(ch in "0123456789abcdef" for ch in version), tag
        assert version != "latest"
    # The two supervisors build from one Dockerfile but are two images.
    assert images.tag_for("combined") != images.tag_for("combined-init")


def test_unchanged_image_is_not_rebuilt_and_is_labelled(client) -> None:
    first = images.build(["generator", "echo"], progress=False)
    again = images.build(["generator", "echo"], progress=False)
    for name in ("generator", "echo"):
        assert again[name].built is False
        assert again[name].tag == first[name].tag == images.tag_for(name)
        assert again[name].size > 0
        labels = client.images.get(again[name].tag).labels
        assert labels.get("app.kubernetes.io/part-of") == "appcoup"


def test_changing_one_program_changes_only_the_images_that_copy_it(context: Path) -> None:
    from appcoup_lib.lessons import change_one_line

    before = {n: images.tag_for(n, context=context) for n in images.NAMES}
    assert before == {n: images.tag_for(n) for n in images.NAMES}
    change_one_line(context, "echo")
    after = {n: images.tag_for(n, context=context) for n in images.NAMES}
    changed = sorted(n for n in images.NAMES if after[n] != before[n])
    assert changed == ["combined", "combined-init", "combined-restart", "echo"]


def test_offline_build_uses_local_bases(client) -> None:
    res = images.build(["generator", "echo"], offline=True, progress=False)
    bases = images.bases(offline=True)
    assert bases == {"busybox": images.local_base_tag("busybox"), "python": images.local_base_tag("python")}
    for kind, tag in bases.items():
        assert client.images.get(tag).labels.get("app.kubernetes.io/part-of") == "appcoup", kind
    # The offline python base really runs what echo needs.
    out = client.containers.run(bases["python"], ["python3", "-c", "import http.server, urllib.request; print('ok')"],
                                remove=True)
    assert out.strip() == b"ok"
    assert res["echo"].tag.startswith("appcoup/echo:")


def _probe_base(client, tmp_path: Path, script: str, command: list[str]) -> tuple[bytes, int]:
    """Make a root file system with ``images/base/<script>``, import it, run ``command`` in it.

    Returns what the command printed and the image's size; the probe image is removed.
    """
    tar = tmp_path / "rootfs.tar"
    subprocess.run(["sh", str(images_dir() / "base" / script), str(tar)], check=True, capture_output=True)
    tag = f"appcoup/test-{script.removesuffix('.sh')}:probe"
    client.api.import_image_from_file(str(tar), repository=tag.split(":")[0], tag="probe",
                                      changes=images._BASE_CHANGES)
    try:
        return client.containers.run(tag, command, remove=True), client.images.get(tag).attrs["Size"]
    finally:
        client.images.remove(tag, force=True)


def test_busybox_rootfs_script_makes_a_working_image(client, tmp_path: Path) -> None:
    out, _ = _probe_base(client, tmp_path, "rootfs-busybox.sh",
                         ["sh", "-c", "od -An -N2 -tu2 /dev/urandom >/dev/null && echo ok"])
    assert out.strip() == b"ok"


def test_broken_dockerfile_raises_build_error_with_step_and_log(context: Path) -> None:
    df = context / "echo" / "Dockerfile"
    df.write_text(df.read_text().replace("COPY echo/echo.py", "COPY echo/no-such-file.py"))
    with pytest.raises(BuildError) as info:
        images.build(["echo"], context=context, progress=False)
    err = info.value
    assert err.image == "echo"
    assert "COPY echo/no-such-file.py" in err.step
    assert "no-such-file.py" in err.log
    assert "What to do" in str(err)


def test_unknown_image_lists_the_valid_ones() -> None:
    from appcoup_lib.errors import AppcoupError

    with pytest.raises(AppcoupError, match="combined-init"):
        images.tag_for("nope")


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("APPCOUP_TEST_DEBOOTSTRAP") != "1" or os.geteuid() != 0,
                    reason="makes a Debian root file system from scratch (a minute or more, root): "
                           "set APPCOUP_TEST_DEBOOTSTRAP=1 to run it")
def test_python_rootfs_script_makes_a_working_image(client, tmp_path: Path) -> None:
    out, size = _probe_base(client, tmp_path, "rootfs-python.sh",
                            ["python3", "-c", "import http.server, urllib.request; print('ok')"])
    assert out.strip() == b"ok"
    assert size < 200e6  # trimmed: no docs, locales, apt lists


@pytest.mark.skipif(os.environ.get("APPCOUP_TEST_DOCKER_UP") != "1",
                    reason=".ci/docker-up may install packages and start dockerd: "
                           "set APPCOUP_TEST_DOCKER_UP=1 to run it (.ci/run does)")
def test_docker_up_is_idempotent() -> None:
    script = Path(__file__).resolve().parent.parent / ".ci" / "docker-up"
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert "Docker answers" in out.stdout
