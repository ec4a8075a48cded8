#!/usr/bin/env python3
"""Finds import circles among the crate's files (src/, the binary's cli/ left out).

Each file is a module; a file imports another when it names it (`crate::a::b`, `super::x`,
`self::x`, or `use child::...` of a submodule). A circle is a set of files that import each other
around a loop. Prints each circle and exits 1 if there is one.
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
modules = {}
for folder, _, files in os.walk(root):
    for name in files:
        path = os.path.join(folder, name)
        rel = os.path.relpath(path, root)
        if not name.endswith(".rs") or rel == "main.rs" or rel.startswith("cli" + os.sep):
            continue
        parts = rel[:-3].split(os.sep)
        if parts[-1] in ("mod", "lib"):
            parts = parts[:-1]
        modules[tuple(parts)] = path


def resolve(parts):
    """The file that holds the item `parts` names: the longest prefix that is a module."""
    parts = list(parts)
    while parts and tuple(parts) not in modules:
        parts.pop()
    return tuple(parts)


# Crates of the workspace that the root re-exports under a floor's old name (`pub use
# access_tokens_domain as tokens;`): what names them names another crate, which Cargo keeps below.
with open(os.path.join(root, "lib.rs")) as f:
    external = set(re.findall(r"^pub use [a-z_][a-z0-9_]* as ([a-z_][a-z0-9_]*);", f.read(), re.M))

imports = {}
for module, path in modules.items():
    with open(path) as f:
        # A file's unit tests may use what they like.
        text = re.split(r"#\[cfg\(test\)\]\s*mod tests", f.read())[0]
    named = set()
    for m in re.finditer(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
        rest = m.group(2).split("::")[1:]
        base = {"crate": [], "self": list(module), "super": list(module[:-1])}[m.group(1)]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
        if not base and rest and rest[0] in external:
            continue
        named.add(resolve(base + rest))
    for m in re.finditer(r"^\s*(?:pub(?:\([a-z]+\))? )?use ([a-z_][a-z0-9_]*)::", text, re.M):
        child = module + (m.group(1),)
        if child in modules:
            named.add(child)
    named.discard(module)
    imports[module] = named

# Tarjan's strongly connected components: each with more than one file is a circle.
order, low, stack, on_stack, circles = {}, {}, [], set(), []
sys.setrecursionlimit(10_000)


def visit(v):
    order[v] = low[v] = len(order)
    stack.append(v)
    on_stack.add(v)
    for w in imports.get(v, ()):
        if w not in order:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], order[w])
    if low[v] == order[v]:
        component = []
        while True:
            w = stack.pop()
            on_stack.discard(w)
            component.append(w)
            if w == v:
                break
        if len(component) > 1:
            circles.append(sorted("/".join(c) or "lib" for c in component))


for v in list(imports):
    if v not in order:
        visit(v)
for circle in circles:
    print("import circle: " + " <-> ".join(circle))
print(f"check-imports: {len(modules)} files, {len(circles)} import circles")
sys.exit(1 if circles else 0)
