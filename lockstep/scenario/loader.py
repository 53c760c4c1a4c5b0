"""Load scenario files: YAML with line marks kept, validated by the pydantic models, every complaint as
`file:line: where: what` (a ScenarioFileError), never a traceback.

Steps and setup items are dispatched on their one key (`act:`, `expect:`, `account:` ...) before validation,
so an error names the step's own fields rather than every member of the union. `${name}` references are
checked statically: the root name must be bound earlier (setup, or a previous step's `save:`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from lockstep.scenario.model import SETUP_KINDS, STEP_KINDS, Scenario

__all__ = ["LoadedScenario", "ScenarioFileError", "discover", "load_file", "load_paths"]

Loc = tuple[str | int, ...]
REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)*)\}")
BUILTIN_BINDINGS = ("scenario", "seed", "run", "api")


class ScenarioFileError(ValueError):
    """One or more problems in a scenario file, each `file:line: where: what`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class LoadedScenario:
    scenario: Scenario
    path: Path
    pack: str
    lines: dict[Loc, int] = field(default_factory=dict)  # where each part of the document starts

    @property
    def id(self) -> str:
        return f"{self.pack}/{self.scenario.name}"

    def line_of(self, loc: Loc) -> int:
        return _nearest_line(self.lines, loc)


class _Marked:
    """Build plain Python values from a composed YAML node tree, recording each node's first line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[Loc, int] = {}
        self.problems: list[str] = []

    def value(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = yaml.safe_load(yaml.serialize(key_node)) if not isinstance(key_node, yaml.ScalarNode) \
                    else _scalar(key_node)
                if not isinstance(key, str | int | float | bool):
                    self.problems.append(f"{self.path}:{key_node.start_mark.line + 1}: {_where(loc)}: a mapping "
                                         "key must be a plain value")
                    continue
                key = str(key) if not isinstance(key, str) else key
                if key in out:
                    self.problems.append(f"{self.path}:{key_node.start_mark.line + 1}: {_where((*loc, key))}: "
                                         f"duplicate key {key!r}")
                out[key] = self.value(value_node, (*loc, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, (*loc, i)) for i, item in enumerate(node.value)]
        return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    # The safe constructor resolves tags (int, float, bool, null, timestamps as strings stay strings).
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _where(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _nearest_line(lines: dict[Loc, int], loc: Loc) -> int:
    probe = tuple(loc)
    while probe:
        if probe in lines:
            return lines[probe]
        probe = probe[:-1]
    return lines.get((), 1)


def _errors(exc: ValidationError, prefix: Loc) -> Iterator[tuple[Loc, str]]:
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (not in the scenario format; see scenarios/scenario.schema.json)"
        yield (*prefix, *loc), message


def load_file(path: str | Path, *, pack: str | None = None) -> LoadedScenario:
    """Parse and validate one scenario file. Raises ScenarioFileError (file, line, what) on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioFileError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ScenarioFileError([f"{path}: not UTF-8 text"]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        what = exc.problem or exc.context
        if exc.context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
            what += f" ({exc.context} that starts at line {exc.context_mark.line + 1})"
        raise ScenarioFileError([f"{path}:{line}: YAML syntax: {what}"]) from None
    except yaml.YAMLError as exc:
        raise ScenarioFileError([f"{path}:1: YAML: {exc}"]) from None
    if node is None:
        raise ScenarioFileError([f"{path}:1: empty file: a scenario needs at least name and steps"])
    marked = _Marked(path)
    try:
        doc = marked.value(node, ())
    except yaml.YAMLError as exc:
        raise ScenarioFileError([f"{path}:{node.start_mark.line + 1}: YAML: {exc}"]) from None
    if marked.problems:
        raise ScenarioFileError(marked.problems)
    if not isinstance(doc, dict):
        raise ScenarioFileError([f"{path}:1: a scenario is a mapping (name:, steps: ...), not a "
                                 f"{type(doc).__name__}"])
    problems: list[tuple[Loc, str]] = []
    setup = _dispatch(doc.get("setup"), "setup", SETUP_KINDS, problems)
    steps = _dispatch(doc.get("steps"), "steps", STEP_KINDS, problems)
    scenario: Scenario | None = None
    data = {k: v for k, v in doc.items() if k not in ("setup", "steps")}
    if "setup" in doc:
        data["setup"] = setup or []
    if "steps" in doc:
        data["steps"] = steps or []
    broken = {loc[0] for loc, _ in problems}  # sections whose items already have their own complaints
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems.extend((loc, msg) for loc, msg in _errors(exc, ()) if not loc or loc[0] not in broken)
    if scenario is not None and not problems:
        problems.extend(_check_references(doc))
    if problems:
        raise ScenarioFileError([f"{path}:{_nearest_line(marked.lines, loc)}: {_where(loc)}: {msg}"
                                 for loc, msg in problems])
    assert scenario is not None
    return LoadedScenario(scenario, path, pack or path.parent.name, marked.lines)


def _dispatch(items: Any, section: str, kinds: dict[str, type[BaseModel]],
              problems: list[tuple[Loc, str]]) -> list[BaseModel] | None:
    if items is None:
        return None
    if not isinstance(items, list):
        problems.append(((section,), f"{section} is a list of one-key mappings"))
        return None
    out: list[BaseModel] = []
    for i, item in enumerate(items):
        loc: Loc = (section, i)
        if not isinstance(item, dict):
            problems.append((loc, f"each {section} item is a mapping with one of: {', '.join(kinds)}"))
            continue
        found = [k for k in item if k in kinds]
        if len(found) != 1:
            what = "none" if not found else ", ".join(found)
            problems.append((loc, f"a {section[:-1] if section == 'steps' else section} item needs exactly one of "
                             f"{', '.join(kinds)}; found {what} (keys: {', '.join(map(str, item)) or 'none'})"))
            continue
        try:
            out.append(kinds[found[0]].model_validate(item))
        except ValidationError as exc:
            problems.extend(_errors(exc, loc))
    return out


def _check_references(doc: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Every ${name...} must name a binding made earlier in the file (setup, a previous step's save)."""
    bound = set(BUILTIN_BINDINGS)
    problems: list[tuple[Loc, str]] = []
    for item in doc.get("setup") or []:
        for kind in SETUP_KINDS:
            if kind in item:
                bound.add(str(item[kind]))
    for i, step in enumerate(doc.get("steps") or []):
        for loc, text in _strings(step, ("steps", i)):
            leftover = REF.sub("", text)
            if "${" in leftover:
                bad = leftover[leftover.index("${"):][:40]
                problems.append((loc, f"{bad!r}: a reference is ${{name}} or ${{name.field.0}} (letters, digits, "
                                 "_ and dots only)"))
            for match in REF.finditer(text):
                if match.group(1) not in bound:
                    problems.append((loc, f"${{{match.group(1)}{match.group(2)}}}: nothing is bound to "
                                     f"{match.group(1)!r} before this step (bound: {', '.join(sorted(bound))})"))
        for spec in step.values():
            if isinstance(spec, dict) and isinstance(spec.get("save"), dict):
                bound.update(spec["save"])
    return problems


def _strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*loc, i))


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Scenario files under the given files / directories (*.yaml, *.yml), sorted; missing paths raise."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(x for x in p.rglob("*") if x.suffix in (".yaml", ".yml") and x.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            raise ScenarioFileError([f"{p}: no such file or directory"])
    return sorted(dict.fromkeys(out))


def load_paths(paths: Iterable[str | Path]) -> tuple[list[LoadedScenario], list[str]]:
    """Every scenario under `paths` and every problem found (all files are read; names must be unique)."""
    loaded: list[LoadedScenario] = []
    problems: list[str] = []
    for path in discover(paths):
        try:
            loaded.append(load_file(path))
        except ScenarioFileError as exc:
            problems.extend(exc.problems)
    seen: dict[str, Path] = {}
    for item in loaded:
        if item.scenario.name in seen:
            problems.append(f"{item.path}:{item.line_of(('name',))}: name: {item.scenario.name!r} is already the "
                            f"name of {seen[item.scenario.name]}")
        seen.setdefault(item.scenario.name, item.path)
    return loaded, problems
