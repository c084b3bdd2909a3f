#!/usr/bin/env python3
"""Import cycles between the top-level modules of a Rust crate's src/.

A top-level module is src/X.rs or src/X/ (the crate roots main.rs and lib.rs are not
modules). Module X imports Y when a file of X names `crate::Y`, directly
(`crate::Y::thing`) or inside a `use crate::{...}` group. Comments and string literals do
not count, nor does a `#[cfg(test)] mod tests { ... }` block.

    scripts/module-cycles.py [SRC]           print each cycle, one a line; exit 1 if any
    scripts/module-cycles.py --layers [SRC]  print each module's layer and what it imports

SRC defaults to the src/ beside this script's folder. With no cycle, the first form prints
nothing and exits 0.
"""

import argparse
import re
import sys
from pathlib import Path

CRATE_ROOTS = {"main.rs", "lib.rs"}
MAX_CYCLES = 50
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RAW_STRING = re.compile(r'b?r(#*)"')
CHAR_LITERAL = re.compile(r"'(\\(u\{[0-9A-Fa-f]*\}|x[0-9A-Fa-f]{2}|.)|[^\\'])'", re.S)
CRATE_PATH = re.compile(r"(?<![A-Za-z0-9_$])\$?crate\s*::\s*")


def top_modules(src: Path) -> set[str]:
    names = set()
    for entry in src.iterdir():
        if entry.is_dir():
            names.add(entry.name)
        elif entry.suffix == ".rs" and entry.name not in CRATE_ROOTS:
            names.add(entry.stem)
    return names


def code_only(text: str) -> str:
    """The text with comments, string and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)

    def blank(s: str) -> str:
        return "".join("\n" if c == "\n" else " " for c in s)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(blank(text[i:end]))
            i = end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif (m := RAW_STRING.match(text, i)) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            close = '"' + m.group(1)
            end = text.find(close, m.end())
            end = n if end < 0 else end + len(close)
            out.append(blank(text[i:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i : j + 1]))
            i = j + 1
        elif c == "'":
            # A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a): only the former is blanked.
            m = CHAR_LITERAL.match(text, i)
            if m:
                out.append(blank(m.group(0)))
                i = m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+tests\s*\{")


def without_test_modules(code: str) -> str:
    """`code` less every `#[cfg(test)] mod tests { ... }` block (braces matched)."""
    while m := TEST_MOD.search(code):
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        code = code[: m.start()] + code[j:]
    return code


def group_heads(group: str) -> list[str]:
    """The first path segment of each item of a `use crate::{...}` group's inside."""
    heads, depth, item = [], 0, []
    for c in group + ",":
        if c == "," and depth == 0:
            m = IDENT.search("".join(item))
            if m:
                heads.append(m.group(0))
            item = []
            continue
        depth += {"{": 1, "}": -1}.get(c, 0)
        item.append(c)
    return heads


def named_modules(code: str) -> set[str]:
    """Every name that follows `crate::`, and the heads of `crate::{...}` groups."""
    names = set()
    for m in CRATE_PATH.finditer(code):
        rest = code[m.end() :]
        if rest.startswith("{"):
            depth, j = 1, 1
            while j < len(rest) and depth:
                depth += {"{": 1, "}": -1}.get(rest[j], 0)
                j += 1
            names.update(group_heads(rest[1 : j - 1]))
        elif ident := IDENT.match(rest):
            names.add(ident.group(0))
    return names


def import_graph(src: Path) -> dict[str, set[str]]:
    tops = top_modules(src)
    graph = {t: set() for t in tops}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        owner = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if owner not in tops:
            continue
        code = without_test_modules(code_only(path.read_text(encoding="utf-8")))
        graph[owner] |= {n for n in named_modules(code) if n in tops and n != owner}
    return graph


def components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative), each sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                found.append(sorted(comp))
    return found


def cycles(graph: dict[str, set[str]], limit: int) -> tuple[list[list[str]], bool]:
    """Elementary cycles, each starting at its smallest module; at most `limit` of them."""
    found: list[list[str]] = []
    for comp in components(graph):
        if len(comp) < 2:
            continue
        members = set(comp)
        for start in comp:
            path = [start]

            def walk(v: str) -> bool:
                for w in sorted(graph[v] & members):
                    if w == start:
                        found.append(path + [start])
                        if len(found) > limit:
                            return False
                    elif w > start and w not in path:
                        path.append(w)
                        if not walk(w):
                            return False
                        path.pop()
                return True

            if not walk(start):
                return found[:limit], True
    return found, False


def layers(graph: dict[str, set[str]]) -> dict[str, int]:
    """0 for a module that imports none; else one above the highest it imports (modules of
    one cycle share a layer)."""
    comp_of = {m: tuple(c) for c in components(graph) for m in c}
    level: dict[tuple, int] = {}
    for comp in components(graph):  # Tarjan yields a component after all it reaches
        key = tuple(comp)
        below = [level[comp_of[d]] for m in comp for d in graph[m] if comp_of[d] != key]
        level[key] = 1 + max(below) if below else 0
    return {m: level[comp_of[m]] for m in graph}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", nargs="?", type=Path, default=Path(__file__).resolve().parent.parent / "src",
                    help="the crate's src/ (default: the one beside this script's folder)")
    ap.add_argument("--layers", action="store_true", help="print each module's layer and the modules it imports")
    args = ap.parse_args()
    if not args.src.is_dir():
        print(f"module-cycles: {args.src} is not a directory", file=sys.stderr)
        return 2
    graph = import_graph(args.src)
    if args.layers:
        level = layers(graph)
        width = max(map(len, graph), default=0)
        for m in sorted(graph, key=lambda m: (-level[m], m)):
            print(f"{level[m]:>2}  {m:<{width}}  {' '.join(sorted(graph[m])) or '-'}")
        return 0
    found, more = cycles(graph, MAX_CYCLES)
    for c in sorted(found):
        print(" -> ".join(c))
    if more:
        print(f"... and more (only the first {MAX_CYCLES} are shown)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
