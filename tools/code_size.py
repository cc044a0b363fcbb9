"""Count lines per module and per function under a package (issue 10's size limits).

Usage: python tools/code_size.py [PACKAGE_DIR] [--max-module 400] [--max-function 60]

A module's size is its physical line count; a function's size is the span of its `def` (decorators
excluded) to its last line, as `ast` reports it. Prints every module and function above the limits,
the largest of each, and exits 1 when any limit is exceeded.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def module_sizes(root: Path) -> dict[Path, int]:
    """Physical lines of every `.py` file below `root`."""
    return {path: len(path.read_text(encoding="utf-8").splitlines()) for path in sorted(root.rglob("*.py"))}


def function_sizes(path: Path) -> list[tuple[str, int, int]]:
    """(qualified name, first line, line count) of every function and method in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                out.append((name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default="normbench")
    parser.add_argument("--max-module", type=int, default=400)
    parser.add_argument("--max-function", type=int, default=60)
    args = parser.parse_args(argv)
    root = Path(args.package)
    modules = module_sizes(root)
    functions = [(path, *f) for path in modules for f in function_sizes(path)]
    big_modules = [(p, n) for p, n in modules.items() if n > args.max_module]
    big_functions = [f for f in functions if f[3] > args.max_function]
    for path, lines in sorted(big_modules, key=lambda item: -item[1]):
        print(f"module   {lines:5d} lines  {path}")
    for path, name, line, lines in sorted(big_functions, key=lambda item: -item[3]):
        print(f"function {lines:5d} lines  {path}:{line} {name}")
    largest_module = max(modules.items(), key=lambda item: item[1])
    largest_function = max(functions, key=lambda item: item[3])
    print(f"{len(modules)} modules, {len(functions)} functions; largest module {largest_module[1]} lines "
          f"({largest_module[0]}), largest function {largest_function[3]} lines "
          f"({largest_function[0]}:{largest_function[2]} {largest_function[1]}); "
          f"{len(big_modules)} modules > {args.max_module}, {len(big_functions)} functions > {args.max_function}")
    return 1 if big_modules or big_functions else 0


if __name__ == "__main__":
    sys.exit(main())
