"""Just enough of Dockerfile and .dockerignore semantics to check them without a Docker engine."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the (joined) line
    line: int


@dataclass
class Stage:
    image: str  # with ARG defaults substituted
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def instructions(path: Path) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped (escape character: backslash)."""
    result: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are ignored too
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        pending += stripped
        keyword, _, args = pending.partition(" ")
        result.append(Instruction(keyword.upper(), args.strip(), start))
        pending = ""
    if pending:
        raise ValueError(f"{path}: dangling line continuation")
    return result


def substitute(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return variables.get(name, "")

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def stages(path: Path) -> list[Stage]:
    """The build stages; FROM images get the defaults of the ARGs declared before the first FROM."""
    global_args: dict[str, str] = {}
    result: list[Stage] = []
    for instruction in instructions(path):
        if instruction.keyword == "ARG" and not result:
            name, _, default = instruction.args.partition("=")
            global_args[name.strip()] = default.strip().strip('"')
        elif instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            image = substitute(words[0], global_args)
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(image=image, name=name))
        elif result:
            result[-1].instructions.append(instruction)
        elif instruction.keyword not in {"ARG"}:
            raise ValueError(f"{path}:{instruction.line}: {instruction.keyword} before FROM")
    return result


def copy_sources(instruction: Instruction) -> tuple[list[str], str, dict[str, str]]:
    """(sources, destination, flags) of a COPY/ADD instruction, shell or JSON form."""
    args = instruction.args
    flags: dict[str, str] = {}
    words = shlex.split(args) if not args.lstrip().startswith("[") else None
    if words is None:
        import json

        words = json.loads(args)
    while words and words[0].startswith("--"):
        flag = words.pop(0)[2:]
        key, _, value = flag.partition("=")
        flags[key] = value
    if len(words) < 2:
        raise ValueError(f"line {instruction.line}: {instruction.keyword} needs a source and a destination")
    return words[:-1], words[-1], flags


def exec_form(args: str) -> list[str] | None:
    """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD, else None."""
    import json

    text = args.strip()
    if not text.startswith("["):
        return None
    return json.loads(text)


# --- .dockerignore ----------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern:
    out = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        else:
            out += re.escape(char)
        i += 1
    return re.compile(out + r"\Z")


class DockerIgnore:
    """Docker's rules: patterns relative to the context root, last match wins, `!` re-includes,
    and a path is excluded when it or one of its parent directories matches."""

    def __init__(self, path: Path):
        self.rules: list[tuple[bool, re.Pattern, str]] = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line[1:].strip() if negate else line
            pattern = pattern.strip("/")
            while pattern.startswith("./"):
                pattern = pattern[2:]
            self.rules.append((negate, _pattern_regex(pattern), line))

    def excluded(self, relative_path: str) -> bool:
        parts = relative_path.strip("/").split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for negate, regex, _ in self.rules:
            if any(regex.match(candidate) for candidate in candidates):
                excluded = not negate
        return excluded
