"""Parsers that live in the infra venv (.venv-infra), run by tests/infra as a subprocess.

The app's venv cannot import pycep, tree-sitter, dockerfile-parse or PyYAML (checkov pins too much to
share a venv with the app), so the tests call `<infra python> infra_probe.py COMMAND FILE...`, which
prints one JSON object mapping each file to its result:

  bicep      pycep-parser's JSON of a .bicep file, or {"error": message}
  treesitter the positions of tree-sitter-bicep's ERROR / MISSING nodes (empty when it parses)
  docker     dockerfile-parse's view: instructions in order, the base images and the build arguments
  yaml       the parsed YAML document
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _bicep(path: Path) -> Any:
    from pycep import BicepParser

    try:
        return BicepParser().parse(file_path=path)
    except Exception as exc:  # report every parser failure as data, with its message
        return {"error": f"{type(exc).__name__}: {exc}"}


def _treesitter(path: Path) -> Any:
    import tree_sitter
    import tree_sitter_bicep

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))
    tree = parser.parse(path.read_bytes())
    problems: list[str] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            row, column = node.start_point
            kind = "missing" if node.is_missing else "error"
            problems.append(f"{kind} at line {row + 1}, column {column + 1}: {node.type}")
        stack.extend(node.children)
    return sorted(problems)


def _docker(path: Path) -> Any:
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(path=str(path))
    return {
        "structure": [
            {"instruction": item["instruction"], "value": item["value"], "line": item["startline"] + 1}
            for item in parser.structure
        ],
        "parent_images": parser.parent_images,
        "args": parser.args,
    }


def _yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())


COMMANDS = {"bicep": _bicep, "treesitter": _treesitter, "docker": _docker, "yaml": _yaml}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in COMMANDS:
        print(f"usage: infra_probe.py {{{','.join(COMMANDS)}}} FILE...", file=sys.stderr)
        return 2
    command = COMMANDS[argv[0]]
    result = {name: command(Path(name)) for name in argv[1:]}
    json.dump(result, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
