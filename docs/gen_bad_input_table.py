"""Write the bad-input table of docs/checkpoints.md from the real command line, so that it cannot disagree with the
code: every case of tests/test_bad_input.py's setting lists (``BAD_SETTINGS``, ``MORE_BAD_SETTINGS``) is run as
``python -m gan_lightning.train <overrides>`` and its exit code and error line are written into the table.

    python docs/gen_bad_input_table.py      # about 3 s per case

tests/test_docs.py checks that the table lists exactly those cases (the tests themselves check each message).
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "checkpoints.md"
BLOCK = re.compile(r"(<!-- bad-input-table -->\n).*?(<!-- /bad-input-table -->)", re.S)
HEADER = "| command-line overrides | exit code | what it prints |\n|---|---|---|\n"


def cases() -> list[list[str]]:
    sys.path.insert(0, str(REPO))
    from tests.test_bad_input import BAD_SETTINGS, MORE_BAD_SETTINGS

    return [overrides for overrides, _ in [*BAD_SETTINGS, *MORE_BAD_SETTINGS]]


def row(overrides: list[str], run_dir: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "gan_lightning.train", *overrides, f"hydra.run.dir={run_dir}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    said = (errors[0] if errors else done.stderr.strip().splitlines()[-1]).replace(str(run_dir), "<run folder>")
    said = said.replace("|", "\\|")
    return f"| `{' '.join(overrides)}` | {done.returncode} | {said} |"


def table() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        return HEADER + "\n".join(row(o, Path(tmp) / str(i)) for i, o in enumerate(cases())) + "\n"


def main() -> None:
    text = PAGE.read_text()
    PAGE.write_text(BLOCK.sub(lambda m: m.group(1) + table() + m.group(2), text))
    print(f"wrote {len(cases())} cases into {PAGE.relative_to(REPO)}")


if __name__ == "__main__":
    main()
