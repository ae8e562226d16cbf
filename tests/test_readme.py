"""The README's library example runs as written, on the demo set."""

from __future__ import annotations

import re
from pathlib import Path

import cv2

from poissonblend.demo import make_demo

README = Path(__file__).resolve().parents[1] / "README.md"


def library_example() -> str:
    text = README.read_text()
    section = text[text.index("## Library"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_library_example_runs_and_writes_one_case(tmp_path, monkeypatch, capsys):
    make_demo(tmp_path / "data" / "demo")
    monkeypatch.chdir(tmp_path)
    exec(compile(library_example(), str(README), "exec"), {})  # its asserts are the checks
    written = sorted((tmp_path / "data" / "aug_input").iterdir())
    assert len(written) == 1 and written[0].name.startswith("slice_pb")
    mask = cv2.imread(str(tmp_path / "data" / "aug_mask" / written[0].name), cv2.IMREAD_GRAYSCALE)
    assert set(mask.ravel().tolist()) == {0, 255}
    assert '"mode":"mixed"' in capsys.readouterr().out
