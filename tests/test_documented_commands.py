"""Every command line written in README.md and docs/*.md still means something: each `python -m gan_lightning.train`
line composes (Hydra refuses unknown keys, groups and options), each `sample`, `report`, `benchmarks` and
`benchmarks.reference` line parses. A renamed
setting or option that the documentation still names fails here, not in a user's terminal."""
from __future__ import annotations

import re
import shlex

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

import benchmarks.__main__ as benchmarks
from benchmarks import reference
from gan_lightning import report, sample
from tests.conftest import REPO, compose_cfg

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MODULES = r"gan_lightning\.(?:train|sample|report)|benchmarks(?:\.reference)?"
COMMAND = re.compile(rf"^\s*(?:\$ )?python -m ({MODULES})(?=\s|$)(.*)$")
# Placeholders the docs use for values a reader fills in.
PLACEHOLDERS = {"<date_time>": "2026-01-01_00-00-00", "<time>": "2026-01-01_00-00-00", "<name>": "run",
                "<folder with MNIST/raw>": "data", "<its last.ckpt>": "last.ckpt",
                "experiment=NAME": "experiment=mnist_best"}
# Commands that use a config the page first tells the reader to write (docs/gan-loop.md's own regulariser).
NEEDS_THE_READERS_FILE = ("+regulariser=drift",)


def documented_commands() -> list[tuple[str, str, str]]:
    """(where, module, arguments) of every command line in a fenced code block; continued lines joined."""
    found = []
    for path in DOCUMENTS:
        in_code, pending = False, ""
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_code, pending = not in_code, ""
                continue
            if not in_code:
                continue
            line = pending + line.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            match = COMMAND.match(line)
            if match:
                found.append((f"{path.name}:{number}", match.group(1), match.group(2)))
    return found


def arguments(text: str) -> list[str]:
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    text = re.sub(r"<[^>]+>", "x", text)
    return shlex.split(text, comments=True)


def first_of_each_sweep(overrides: list[str]) -> list[str]:
    """A sweep's overrides with each swept setting at its first value (what job 0 runs)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    result = []
    for text, override in zip(overrides, parsed):
        if override.is_sweep_override():
            value = next(override.sweep_string_iterator())
            result.append(f"{override.get_key_element()}={value}")
        else:
            result.append(text)
    return result


COMMANDS = documented_commands()


def test_the_documentation_has_commands_to_check():
    modules = {module for _, module, _ in COMMANDS}
    assert {"gan_lightning.train", "gan_lightning.sample", "gan_lightning.report", "benchmarks",
            "benchmarks.reference"} <= modules
    assert len(COMMANDS) > 40


@pytest.mark.parametrize(("where", "module", "text"), COMMANDS, ids=[where for where, _, _ in COMMANDS])
def test_a_documented_command_line_is_valid(where, module, text, tmp_path, monkeypatch):
    args = arguments(text)
    if any(flag in args for flag in ("--help", "-h", "--hydra-help")):
        return  # tests/test_entry_points.py runs each --help
    if any(a in NEEDS_THE_READERS_FILE for a in args):
        return
    if module == "gan_lightning.sample":
        monkeypatch.chdir(tmp_path)  # the checkpoint it names exists (an empty file: only the settings are parsed)
        ckpt = tmp_path / next(a.split("=", 1)[1] for a in args if a.startswith("ckpt="))
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        ckpt.touch()
        sample.parse(args)
    elif module == "gan_lightning.report":
        report.command_line().parse_args(args)
    elif module == "benchmarks":
        benchmarks.parse_args(args)
    elif module == "benchmarks.reference":
        reference.parse_args(args)
    else:
        overrides = [a for a in args if a not in ("-m", "--multirun", "--cfg", "job")]
        # A launcher and its settings need its plugin installed; that is tests/test_entry_points.py's subject.
        overrides = [o for o in first_of_each_sweep(overrides)
                     if not o.startswith(("hydra/launcher=", "hydra.launcher."))]
        compose_cfg(tmp_path, overrides)
