"""The guides in ``docs/`` run as written: their code blocks execute and their config
reference covers every setting.

Fenced blocks, by info string:

- ``python file=NAME`` (or any language with ``file=NAME``, e.g. ``yaml file=pynenc.yaml``)
  is written to ``NAME`` in the doc's fresh temporary directory; a ``test_*.py`` file is
  then run with pytest there, as the guide tells the reader to.
- ``python`` is run as a script (cwd = that directory, which is on ``PYTHONPATH`` with the
  repository root), in document order, after the files above it are written. It must exit 0
  without printing a traceback (a runner thread dying at exit would go unnoticed otherwise).
- ``text output`` right after a ``python`` block is that script's expected stdout.
- ``python norun`` is only compiled; ``bash``, ``console`` and other blocks are not run.
"""

from __future__ import annotations

import enum
import os
import re
import subprocess
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import pynenc.conf
from pynenc.conf.config_base import ConfigBase

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
SCRIPT_TIMEOUT_SEC = 30

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass
class Block:
    language: str
    attributes: dict[str, str]
    code: str
    line: int
    expected_output: str | None = None

    @property
    def file(self) -> str | None:
        return self.attributes.get("file")

    @property
    def runs(self) -> bool:
        return self.language == "python" and self.file is None and "norun" not in self.attributes


@dataclass
class Doc:
    path: Path
    blocks: list[Block] = field(default_factory=list)


def parse_blocks(text: str) -> list[Block]:
    """Every fenced block, with each ``text output`` block attached to the script before it."""
    blocks: list[Block] = []
    for match in _FENCE.finditer(text):
        language, *words = match.group(1).split()
        attributes = dict(word.partition("=")[::2] for word in words)
        line = text.count("\n", 0, match.start()) + 1
        block = Block(language, attributes, match.group(2), line)
        if language == "text" and "output" in attributes:
            if not blocks or not blocks[-1].runs:
                raise ValueError(f"line {line}: a 'text output' block must follow a python block")
            blocks[-1].expected_output = block.code
            continue
        blocks.append(block)
    return blocks


def load_docs() -> list[Doc]:
    return [Doc(p, parse_blocks(p.read_text(encoding="utf-8"))) for p in sorted(DOCS.glob("*.md"))]


def _environment(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PYNENC")}
    env["PYTHONPATH"] = os.pathsep.join([str(workdir), str(REPO)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(args: list[str], workdir: Path, where: str) -> str:
    done = subprocess.run(
        args,
        cwd=workdir,
        env=_environment(workdir),
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_SEC,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{where} exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n"
            f"{done.stderr}",
            pytrace=False,
        )
    if "Traceback (most recent call last)" in done.stderr:
        pytest.fail(f"{where} exited 0 but printed a traceback:\n{done.stderr}", pytrace=False)
    return done.stdout


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


def run_doc(doc: Doc, workdir: Path) -> None:
    name = doc.path.relative_to(REPO)
    for block in doc.blocks:
        where = f"{name}:{block.line}"
        if block.file:
            target = workdir / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
            if Path(block.file).name.startswith("test_"):
                pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", block.file]
                _run([sys.executable, *pytest_args], workdir, f"pytest of {where}")
        elif block.runs:
            script = workdir / f"_block_{block.line}.py"
            script.write_text(block.code, encoding="utf-8")
            stdout = _run([sys.executable, script.name], workdir, where)
            if block.expected_output is not None:
                assert _lines(stdout) == _lines(block.expected_output), f"output of {where}"
        elif block.language == "python":
            compile(block.code, where, "exec")


DOC_FILES = load_docs()

_SAMPLE = """
```python file=pkg/a.py
VALUE = 1
```

```python
from pkg.a import VALUE
print(VALUE)
```

```text output
1
```

```bash
rm -rf /
```
"""


def test_block_parser_reads_info_strings() -> None:
    blocks = parse_blocks(_SAMPLE)
    assert [(b.language, b.file, b.runs) for b in blocks] == [
        ("python", "pkg/a.py", False),
        ("python", None, True),
        ("bash", None, False),
    ]
    assert blocks[1].expected_output == "1\n"


def test_wrong_output_fails(tmp_path: Path) -> None:
    blocks = parse_blocks(_SAMPLE.replace("```text output\n1", "```text output\n2"))
    with pytest.raises(AssertionError, match="output of"):
        run_doc(Doc(DOCS / "sample.md", blocks), tmp_path)


def test_docs_exist() -> None:
    names = {doc.path.name for doc in DOC_FILES}
    assert {"index.md", "getting_started.md", "configuration.md"} <= names


@pytest.mark.parametrize("doc", DOC_FILES, ids=[d.path.name for d in DOC_FILES])
def test_code_blocks_run(doc: Doc, tmp_path: Path) -> None:
    run_doc(doc, tmp_path)


def test_runnable_blocks_are_where_the_guide_needs_them() -> None:
    guide = next(d for d in DOC_FILES if d.path.name == "getting_started.md")
    languages = {b.language for b in guide.blocks}
    assert {"python", "bash"} <= languages
    assert sum(b.runs for b in guide.blocks) >= 5
    assert any("pynenc --app tasks.app runner start" in b.code for b in guide.blocks)


def test_links_between_docs_resolve() -> None:
    for doc in DOC_FILES:
        text = doc.path.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", text):
            assert (doc.path.parent / target).is_file(), f"{doc.path.name} links to {target}"


# --- docs/configuration.md covers every setting ----------------------------------------


def config_classes() -> list[type[ConfigBase]]:
    """Every settings class pynenc.conf exports, most generic first."""
    found = [
        obj
        for obj in vars(pynenc.conf).values()
        if isinstance(obj, type) and issubclass(obj, ConfigBase) and obj is not ConfigBase
    ]
    return sorted(found, key=lambda cls: (len(cls.lineage()), cls.__name__))


def own_fields(cls: type[ConfigBase]) -> list[str]:
    """Fields a class declares itself (inherited ones are documented with their parent)."""
    parents = {name for base in cls.lineage()[:-1] for name in base.fields()}
    return [name for name in cls.fields() if name not in parents or name in cls.__annotations__]


def format_type(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return " | ".join(format_type(arg) for arg in args)
    if origin is not None:
        inner = ", ".join("..." if arg is Ellipsis else format_type(arg) for arg in args)
        return f"{origin.__name__}[{inner}]"
    if hint is type(None):
        return "None"
    return str(getattr(hint, "__name__", hint))


def format_default(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, tuple | list):
        return "[" + ", ".join(format_default(item) for item in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def table_row_start(cls: type[ConfigBase], name: str) -> str:
    """The first three cells of the field's row: name, type and default, from the class."""
    hint = typing.get_type_hints(cls)[name]
    default = format_default(cls.fields()[name].default)
    type_name = format_type(hint).replace("|", "\\|")  # a bare | would end the cell
    return f"| `{name}` | `{type_name}` | `{default}` |"


def sections(text: str) -> dict[str, str]:
    """Heading -> the text under it, up to the next heading."""
    parts = re.split(r"^#{2,4} (.+)$", text, flags=re.MULTILINE)
    return {heading.strip(): body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def section_of(cls: type[ConfigBase], text: str) -> str:
    matching = [body for heading, body in sections(text).items() if f"`{cls.__name__}`" in heading]
    assert matching, f"docs/configuration.md has no heading naming `{cls.__name__}`"
    return matching[0]


CONFIGURATION = DOCS / "configuration.md"


@pytest.mark.parametrize("cls", config_classes(), ids=lambda cls: cls.__name__)
def test_configuration_documents_every_field(cls: type[ConfigBase]) -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    body = section_of(cls, text)
    assert f"`{cls.section_name}`" in body, f"name the file section `{cls.section_name}`"
    env_prefix = f"PYNENC__{cls.__name__.upper()}__"
    assert env_prefix in body, f"name the class variables {env_prefix}<SETTING>"
    missing = [name for name in own_fields(cls) if table_row_start(cls, name) not in body]
    assert not missing, (
        f"docs/configuration.md, section `{cls.__name__}`: no accurate row for {missing}. "
        "Expected rows like:\n"
        + "\n".join(table_row_start(cls, name) + " ... |" for name in missing)
    )


def test_configuration_mentions_every_field_anywhere() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    names = {name for cls in config_classes() for name in cls.fields()}
    assert not [name for name in sorted(names) if f"`{name}`" not in text]


def print_tables() -> None:
    """Print the skeleton of every table (``python -m tests.test_docs``), to start a new row."""
    for cls in config_classes():
        print(f"\n### `{cls.__name__}`\n")
        print("| setting | type | default | meaning |\n|---|---|---|---|")
        for name in own_fields(cls):
            print(table_row_start(cls, name) + "  |")


if __name__ == "__main__":
    print_tables()
