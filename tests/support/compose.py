"""Compose's variable interpolation, for checking docker-compose.yml without a Docker engine."""

from __future__ import annotations

import re

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error} and bare $VAR: an innermost
# ${...} (its default holds no other variable); `interpolate` resolves nested ones innermost first,
# as Compose does.
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^{}$]*))?\}|\$(?P<bare>\w+)")


class MissingVariable(KeyError):
    pass


def interpolate(value, env: dict[str, str]):
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg")
        current = env.get(name)
        if op in (":-", "-"):
            unset = current is None or (op == ":-" and current == "")
            return arg if unset else current
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise MissingVariable(f"{name}: {arg}")
            return current
        return current or ""

    def resolve(part: str) -> str:
        for _ in range(8):  # innermost first: ${NEW:-${OLD:-default}}
            part, count = VARIABLE.subn(replace, part)
            if not count:
                break
        return part

    return "$".join(resolve(part) for part in value.split("$$"))
