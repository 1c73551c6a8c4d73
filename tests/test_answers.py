"""The answer key: one entry per solution cell of the real notebooks, the code exactly as written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from appcoup_lib.answers import answer_key

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def source(cell: dict) -> str:
    s = cell["source"]
    return s if isinstance(s, str) else "".join(s)


def without_magic(code: str) -> str:
    """A solution cell's code without its first line, ``%%solution`` (the magic that folds it)."""
    first, _, rest = code.partition("\n")
    assert first.split()[0] == "%%solution", "a solution cell starts with %%solution"
    return rest


def solutions(folder: Path) -> list[tuple[str, str, str, str]]:
    """(notebook title, check name, solution code without its %%solution line, prompt's last line)
    per solution cell, read straight from the ipynb JSON, without the library."""
    out = []
    for path in sorted(folder.glob("[0-9][0-9]-*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        title = source(cells[0]).splitlines()[0].lstrip("# ").strip()
        for i, cell in enumerate(cells):
            if "solution" not in cell.get("metadata", {}).get("tags", []):
                continue
            check_cell = source(cells[i - 1])  # the convention: the check cell comes right before
            assert cells[i - 1]["cell_type"] == "code" and "check_" in check_cell, path.name
            check = re.findall(r"(check_\w+)\(", check_cell)[-1]
            prompt = next(source(c) for c in reversed(cells[:i]) if c["cell_type"] == "markdown")
            out.append((title, check, without_magic(source(cell)), prompt.strip().splitlines()[-1].strip()))
    return out


def entries(key: str) -> list[str]:
    return re.split(r"^(?=### Exercise )", key, flags=re.MULTILINE)[1:]


def code_blocks(entry: str) -> list[str]:
    return re.findall(r"^(`{3,})python\n(.*?)\n\1$", entry, flags=re.MULTILINE | re.DOTALL)


def test_one_entry_per_solution_cell_with_its_check_and_code_as_in_the_notebook(tmp_path: Path):
    # A copy of the real notebooks, so both readings see the same files while someone edits them.
    for nb in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"):
        shutil.copy(nb, tmp_path / nb.name)
    want = solutions(tmp_path)
    key = answer_key(tmp_path)
    got = entries(key)
    assert want, "the course has solution cells"
    assert len(got) == len(want)
    for entry, (title, check, code, prompt_end) in zip(got, want):
        assert f"`{check}`" in entry
        assert [block for _, block in code_blocks(entry)] == [code]
        assert prompt_end in entry  # the prompt is quoted
        # the entry sits under its notebook's title
        assert key.rfind(f"\n## {title}\n", 0, key.index(entry)) != -1, title
    assert len(solutions(NOTEBOOKS)) == len(entries(answer_key())), "the same on the course's own notebooks/"


def appcoup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appcoup_lib", *args], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ), cwd=ROOT, check=False)


def test_cli_writes_the_same_key_and_prints_it_without_out(tmp_path: Path):
    out = tmp_path / "deeper" / "answer-key.md"
    p = appcoup("answers", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert out.read_text() == answer_key()
    assert f"{len(solutions(NOTEBOOKS))} exercises written to {out}" in p.stdout
    printed = appcoup("answers")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == answer_key()


def test_cli_says_why_when_it_cannot_write(tmp_path: Path):
    (tmp_path / "a-file").write_text("")
    p = appcoup("answers", "--out", str(tmp_path / "a-file" / "key.md"))
    assert p.returncode == 1
    assert "Cannot write the answer key" in p.stderr and "What to do:" in p.stderr


def test_a_notebook_without_solutions_gives_no_entry(tmp_path: Path):
    with_one = json.loads((NOTEBOOKS / "00-setup.ipynb").read_text())
    without = json.loads((NOTEBOOKS / "03-pod-coupling.ipynb").read_text())
    without["cells"] = [c for c in without["cells"] if "solution" not in c.get("metadata", {}).get("tags", [])]
    (tmp_path / "00-setup.ipynb").write_text(json.dumps(with_one))
    (tmp_path / "03-no-solutions.ipynb").write_text(json.dumps(without))

    key = answer_key(tmp_path)
    got = entries(key)
    assert len(got) == 1 and "`check_auto_runtime`" in got[0]
    assert not any(block.startswith("%%solution") for _, block in code_blocks(got[0]))  # the code, not the magic
    assert "\n## 03 " not in key  # no section for it, only its row in the table, with 0 exercises
    assert re.search(r"^\| 03 · .* \| 0 \|$", key, flags=re.MULTILINE)

    (tmp_path / "00-setup.ipynb").unlink()
    alone = answer_key(tmp_path)
    assert entries(alone) == [] and "0 exercises in 1 notebook." in alone


def test_the_teaching_guide_quotes_the_notebooks_time_lines():
    """docs/teaching.md types the planned minutes once; they must be the notebooks' own."""
    guide = (ROOT / "docs" / "teaching.md").read_text()
    quoted = {nn: int(m) for nn, m in re.findall(r"\b(\d\d) → (\d+)\b", guide)}
    own = {}
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")):
        first = source(json.loads(path.read_text())["cells"][0])
        own[path.name[:2]] = int(re.search(r"\*\*Time:\*\* about (\d+) minutes", first).group(1))
    assert quoted == own
    assert f"**{sum(own.values())} minutes for all {len(own)}" in guide.replace("eight", str(len(own)))
