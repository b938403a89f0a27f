"""Write docs/configuration.md from the config files in conf/, with the comments they carry.

    python docs/gen_config_reference.py           # rewrite docs/configuration.md
    python docs/gen_config_reference.py --check   # exit 1 if docs/configuration.md is not what this writes

The page is generated so that it cannot drift from the configs: every setting is listed with its default and the
comment next to it (or on the lines just above it) in its YAML file; a file's leading comment becomes the section's
text. ``tests/test_docs.py`` checks that the committed page equals what this script writes.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"
OUTPUT = REPO / "docs" / "configuration.md"
WIDTH = 120


# ------------------------------------------------------------------------------------------------ reading
@dataclass
class Setting:
    """One key of a config file: its dotted path inside the file, its value as written, and its comment."""

    path: str
    value: str
    comment: list[str] = field(default_factory=list)
    is_mapping: bool = False


@dataclass
class ConfigFile:
    path: Path
    header: list[str]  # the leading comment lines, without '# '
    package: str | None  # the '# @package' directive, if any
    settings: list[Setting]
    data: dict


def _split_comment(text: str) -> tuple[str, str | None, int]:
    """(code, comment or None, the comment's column) of a YAML line; a '#' inside quotes is not a comment."""
    quote = None
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip(), text[i + 1 :].strip(), i
    return text.rstrip(), None, -1


KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[^\s#:'\"-][^:#]*?|'[^']*'|\"[^\"]*\"):(?:\s+(?P<value>.*))?$")


def read_config(path: Path) -> ConfigFile:
    """The settings of one YAML file with their comments, read line by line (PyYAML drops comments)."""
    lines = path.read_text().splitlines()
    data = yaml.safe_load(path.read_text()) or {}
    header: list[str] = []
    package = None
    settings: list[Setting] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the mappings the current line is inside
    pending: list[str] = []  # comment lines above the next key
    in_header = True
    last: Setting | None = None  # the key whose inline comment the next comment-only line may continue
    last_column = -1
    skipped_list: tuple[int, Setting | None] | None = None  # (indent of its key, setting collecting its comments)
    for line in lines:
        stripped = line.strip()
        code, comment, column = _split_comment(line)
        if not stripped:
            in_header = False
            pending, last = [], None
            continue
        indent = len(line) - len(line.lstrip(" "))
        if not code:  # a comment-only line
            if comment.startswith("@package"):
                package = comment.split(None, 1)[1].strip()
                continue
            if in_header:
                header.append(line.split("#", 1)[1][1:] if "# " in line else comment)
                continue
            if skipped_list is not None and indent > skipped_list[0]:
                continue  # a comment inside a list (e.g. the defaults list) is about that list's entries
            if last is not None and column == last_column:
                last.comment.append(comment)
            else:
                pending.append(comment)
                last = None
            continue
        in_header = False
        if skipped_list is not None:
            if indent > skipped_list[0] or stripped.startswith("-"):
                if comment and skipped_list[1] is not None:
                    skipped_list[1].comment.append(comment)
                continue
            skipped_list = None
        match = KEY_LINE.match(code)
        if match is None:
            raise ValueError(f"{path}: cannot read the line {line!r}")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = match["key"].strip("'\"")
        dotted = ".".join([k for _, k in stack] + [key])
        value = (match["value"] or "").strip()
        setting = Setting(dotted, value, pending + ([comment] if comment else []))
        pending = []
        last, last_column = (setting, column) if comment else (None, -1)
        if value:
            settings.append(setting)
            continue
        nested = _lookup(data, dotted)
        if isinstance(nested, list):  # a block list: one setting holding the whole list
            setting.value = yaml.safe_dump(nested, default_flow_style=True, width=1000).strip()
            skipped_list = (indent, setting if key != "defaults" else None)
            if key != "defaults":
                settings.append(setting)
            last = None
            continue
        setting.is_mapping = True
        if setting.comment:
            settings.append(setting)
        stack.append((indent, key))
    return ConfigFile(path, header, package, settings, data)


def _lookup(data, dotted: str):
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def defaults_of(config: ConfigFile) -> list[tuple[str, str]]:
    """The defaults list as (group, option) pairs; plain entries (another file of the group, _self_) as ('', name)."""
    pairs = []
    for entry in config.data.get("defaults") or []:
        if isinstance(entry, dict):
            ((group, option),) = entry.items()
            pairs.append((group, "null" if option is None else str(option)))
        else:
            pairs.append(("", str(entry)))
    return pairs


# ------------------------------------------------------------------------------------------------ writing
def escape(text: str) -> str:
    """Markdown-safe prose outside `code spans`: no stray emphasis, no HTML tags."""
    parts = re.split(r"(`[^`]*`)", text)
    for i in range(0, len(parts), 2):
        part = parts[i].replace("\\", "\\\\").replace("*", "\\*").replace("<", "&lt;")
        parts[i] = re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", part)
    return "".join(parts)


# A wrapped line must not start with what Markdown would read as a list, heading, quote or table.
RISKY_START = re.compile(r"^([-+*#>|=]|\d+[.)])")


def wrap(text: str, first: str = "", rest: str = "") -> list[str]:
    """``text`` in lines of at most WIDTH characters (``first`` / ``rest`` in front), never starting a line with a
    token Markdown would take for block syntax."""
    words = text.split()
    lines: list[list[str]] = [[]]
    for word in words:
        current = lines[-1]
        prefix = first if len(lines) == 1 else rest
        if current and len(prefix) + len(" ".join([*current, word])) > WIDTH:
            carried = [word]
            while RISKY_START.match(carried[0]) and len(current) > 1:
                carried.insert(0, current.pop())
            lines.append(carried)
        else:
            current.append(word)
    return [(first if i == 0 else rest) + " ".join(words) for i, words in enumerate(lines) if words]


def paragraphs(comment_lines: list[str]) -> list[str]:
    """A file's leading comment as Markdown: prose joined and wrapped; lines indented in the comment (commands,
    examples) as a code block."""
    out: list[str] = []
    prose: list[str] = []
    code: list[str] = []

    def flush_prose() -> None:
        if prose:
            out.extend(wrap(escape(" ".join(prose))))
            out.append("")
            prose.clear()

    def flush_code() -> None:
        if code:
            out.extend(["```text", *code, "```", ""])
            code.clear()

    for line in comment_lines:
        if line.startswith("  "):
            flush_prose()
            code.append(line.strip())
        else:
            flush_code()
            prose.append(line.strip())
    flush_prose()
    flush_code()
    return out


def setting_lines(setting: Setting, prefix: str) -> list[str]:
    name = f"`{prefix}{setting.path}`"
    head = name if setting.is_mapping else f"{name} = `{setting.value}`"
    comment = escape(" ".join(setting.comment))
    return wrap(f"{head}: {comment}" if comment else head, "- ", "  ")


def settings_block(config: ConfigFile, prefix: str, skip: tuple[str, ...] = ()) -> list[str]:
    lines = []
    for setting in config.settings:
        if setting.path.split(".")[0] in skip:
            continue
        lines.extend(setting_lines(setting, prefix))
    return [*lines, ""] if lines else []


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def option_name(path: Path) -> str:
    return path.stem


def group_options(group: str) -> list[Path]:
    return sorted((CONF / group).glob("*.yaml"))


def section(title: str, level: int = 2) -> list[str]:
    return ["#" * level + " " + title, ""]


# ------------------------------------------------------------------------------------------------ the page
INTRO = """\
# Configuration reference

<!-- Generated by docs/gen_config_reference.py from conf/. Do not edit by hand: change the config files (their
comments are the descriptions here) and run `python docs/gen_config_reference.py`. tests/test_docs.py checks that
this page is what the script writes. -->

Every setting of `python -m gan_lightning.train`, with its default and the comment it carries in its config file.
The config is composed by [Hydra](https://hydra.cc) from `conf/train.yaml` and one option of each config group:

- `key=value` changes a setting, e.g. `model.g_lr=1e-4` or `data.batch_size=128`;
- `group=option` picks another option of a group, e.g. `model=dcgan`, `trainer=gpu`, `execution=cuda_graph`;
- `+group=option` adds an optional group, e.g. `+regulariser=r1`; `~key` removes a setting, e.g.
  `~callbacks.image_metrics`;
- `experiment=NAME` loads a preset ([Presets](presets.md)), which sets several groups and settings at once.

`python -m gan_lightning.train --cfg job` prints the composed config without training, with every override
applied. Settings are checked before anything trains; a wrong one stops the run with one line naming the key.
"""


def top_level() -> list[str]:
    config = read_config(CONF / "train.yaml")
    lines = section("Top level (`conf/train.yaml`)")
    groups = [f"`{group}={option}`" for group, option in defaults_of(config)
              if group and not group.startswith(("override", "hydra"))]
    lines += wrap("The groups composed by default: " + ", ".join(groups) + ".")
    lines.append("")
    lines += settings_block(config, "", skip=("hydra", "paths"))
    lines += section("Output folders (`hydra.*`)", 3)
    lines += settings_block(_only(config, ("hydra", "paths")), "")
    return lines


def _only(config: ConfigFile, roots: tuple[str, ...]) -> ConfigFile:
    kept = [s for s in config.settings if s.path.split(".")[0] in roots and not s.path.endswith("._target_")]
    return ConfigFile(config.path, [], config.package, kept, config.data)


def model() -> list[str]:
    base = read_config(CONF / "model" / "_base.yaml")
    lines = section("Model (`model.*`)")
    lines += wrap("`conf/model/_base.yaml` holds the settings every GAN shares; each option of `conf/model/` "
                  "adds its nets (`model.generator`, `model.discriminator`) and changes what differs. "
                  "The GAN's schedule is described in [The GAN loop](gan-loop.md).")
    lines.append("")
    lines += paragraphs(base.header)
    lines += settings_block(base, "model.")
    lines += section("Model options (`model=...`)", 3)
    lines += wrap("Each `data` option picks its usual model; `model=NAME` replaces it. "
                  "`python -m gan_lightning.train model=NAME --cfg job` shows a model's nets in full.")
    lines.append("")
    for path in group_options("model"):
        if path.stem.startswith("_"):
            continue
        config = read_config(path)
        parents = [option for group, option in defaults_of(config) if not group and option not in ("_self_", "_base")]
        text = " ".join(config.header)
        if parents:
            text += f" Extends `model={parents[0]}`."
        lines += wrap(escape(text), f"- `model={option_name(path)}`: ", "  ")
    lines.append("")
    return lines


def regularisers() -> list[str]:
    lines = section("Regularisers (`+regulariser=...`)", 3)
    lines += wrap("Penalties added to D's loss, under `model.objective.regularisers.<name>`. None by default; add "
                  "one with `+regulariser=OPTION`, several with `'+regulariser=[r1,r2]'`, and change a setting with "
                  "`model.objective.regularisers.<name>.<setting>=...`. How they work: "
                  "[The GAN loop](gan-loop.md#add-a-regulariser).")
    lines.append("")
    for path in group_options("regulariser"):
        config = read_config(path)
        prefix = (config.package or "") + "."
        lines += section(f"`+regulariser={option_name(path)}`", 4)
        lines += paragraphs(config.header)
        lines += settings_block(config, prefix)
    return lines


def optimizers() -> list[str]:
    lines = section("Optimizers (`optimizer@model.g_optimizer=...`)", 3)
    lines += wrap("The options of `conf/optimizer/` are partial `torch.optim` classes: the GAN passes each net's "
                  "parameters and its learning rate (`model.g_lr`, `model.d_lr`). Their settings live under "
                  "`model.g_optimizer.*` and `model.d_optimizer.*`. D's optimizer follows G's choice unless set "
                  "itself: `optimizer@model.g_optimizer=sgd_momentum` switches both nets, "
                  "`optimizer@model.d_optimizer=sgd_momentum` D alone, and `model.d_optimizer.fused=false` changes "
                  "one field of one net.")
    lines.append("")
    for path in group_options("optimizer"):
        config = read_config(path)
        lines += section(f"`{option_name(path)}`", 4)
        lines += paragraphs(config.header)
        lines += settings_block(config, "model.g_optimizer.")
    return lines


def execution() -> list[str]:
    default = read_config(CONF / "execution" / "default.yaml")
    lines = section("Execution (`execution.*`)")
    lines += paragraphs(default.header)
    lines += settings_block(default, "execution.")
    lines += _options("execution", exclude=("default",))
    return lines


def _options(group: str, exclude: tuple[str, ...]) -> list[str]:
    """Each option of a group besides the default: its leading comment and the settings it changes."""
    lines = section(f"Other options (`{group}=...`)", 3)
    for path in group_options(group):
        if option_name(path) in exclude:
            continue
        config = read_config(path)
        changes = ", ".join(f"`{group}.{s.path}={s.value}`" for s in config.settings if not s.is_mapping)
        parents = [option for g, option in defaults_of(config) if not g and option != "_self_"]
        text = " ".join(config.header)
        if parents and parents[0] != "default":
            text += f" Extends `{group}={parents[0]}`."
        text = escape(text) + (f" Sets {changes}." if changes else "")
        lines += wrap(text.strip(), f"- `{group}={option_name(path)}`: ", "  ")
    return [*lines, ""]


def data() -> list[str]:
    lines = section("Data (`data.*`)")
    lines += wrap("One option per data set (`data=NAME`). The batch contract between the data and the GAN is in "
                  "[The GAN loop](gan-loop.md#add-a-data-set).")
    lines.append("")
    for path in group_options("data"):
        config = read_config(path)
        lines += section(f"`data={option_name(path)}`", 3)
        lines += paragraphs(config.header)
        said = []
        for group, option in defaults_of(config):
            plain = group.replace("override ", "").lstrip("/").split("@")[0]
            if group.startswith("/model"):
                said.append(f"Picks `model={option}` (another `model=` replaces it).")
            elif group.startswith("override /trainer"):
                said.append(f"Runs on `trainer={option}` unless the command line picks a trainer "
                            "(e.g. `trainer=gpu`).")
            elif group.startswith("/metrics"):
                said.append(f"Adds the image metrics `callbacks.image_metrics` (`conf/{plain}/{option}.yaml`).")
            elif not group and option != "_self_":
                said.append(f"Extends `data={option}`.")
        if said:
            lines += wrap(" ".join(said))
            lines.append("")
        lines += settings_block(config, "data.")
    return lines


def trainer() -> list[str]:
    default = read_config(CONF / "trainer" / "default.yaml")
    lines = section("Trainer (`trainer.*`)")
    lines += wrap("The Lightning `Trainer`'s arguments: any other argument of `lightning.pytorch.Trainer` can be "
                  "added with `+trainer.NAME=VALUE`.")
    lines.append("")
    lines += paragraphs(default.header)
    lines += settings_block(default, "trainer.")
    lines += _options("trainer", exclude=("default",))
    return lines


def callbacks() -> list[str]:
    config = read_config(CONF / "callbacks" / "default.yaml")
    lines = section("Callbacks (`callbacks.*`)")
    lines += wrap("`callbacks.checkpoint` writes `checkpoints/last.ckpt` ([Checkpoints](checkpoints.md)), "
                  "`callbacks.samples` logs grids, density and scatter figures and the 1-D and 2-D metrics "
                  "([Metrics](metrics.md)). Remove one with `~callbacks.NAME`.")
    lines.append("")
    lines += paragraphs(config.header)
    lines += settings_block(config, "callbacks.")
    metrics = read_config(CONF / "metrics" / "image.yaml")
    lines += section("Image metrics (`callbacks.image_metrics.*`)", 3)
    lines += wrap("Added by `data=mnist` and `data=fashion_mnist` (`conf/metrics/image.yaml`).")
    lines.append("")
    lines += paragraphs(metrics.header)
    lines += settings_block(metrics, "callbacks.image_metrics.")
    return lines


def logger() -> list[str]:
    lines = section("Logger (`logger.*`)")
    lines += wrap("TensorBoard event files in the run folder; `tensorboard --logdir outputs` shows every run.")
    lines.append("")
    for path in group_options("logger"):
        lines += settings_block(read_config(path), "logger.")
    return lines


def render() -> str:
    lines = INTRO.splitlines() + [""]
    for part in (top_level, model, regularisers, optimizers, execution, data, trainer, callbacks, logger):
        lines += part()
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page differs from what would be written")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.is_file() or OUTPUT.read_text() != text:
            print(f"{rel(OUTPUT)} is out of date: run python docs/gen_config_reference.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {rel(OUTPUT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
