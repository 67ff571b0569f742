#!/usr/bin/env python3
"""code_shape.py: the architecture rules of docs/DESIGN.md ("Module map").

Size: no file under src/ longer than --max-file-lines (600) lines, and no
C/CUDA function under src/, include/ or kernels/ longer than
--max-function-lines (120) lines, counted from the line that opens its
signature to its closing brace. A function definition is recognised the
way this tree writes one: a signature that starts in column 0 and a body
that closes with "}" in column 0 (the style .clang-format keeps).

Includes: a module's internal header (src/<module>/*_internal.h) is
included by that module's files only; the model's headers
(include/dtrain/model.h, src/model/*.h and the dtrain headers they pull
in) include nothing of train, eval, comm or ckpt.

Prints one line per violation and exits 1 when there is any, 0 otherwise.

usage: tools/code_shape.py [--root DIR] [--max-file-lines N] [--max-function-lines N]
"""
import argparse
import os
import re
import sys

SOURCE_EXT = (".c", ".h", ".cu", ".cuh", ".cpp", ".inc")
# A line in column 0 that can open a function signature: not a comment,
# preprocessor line, brace, label-like keyword or struct/enum/typedef body.
NOT_SIGNATURE = re.compile(r"^(#|/\*|\*|//|}|{|typedef\b|struct\b[^(]*$|enum\b|union\b|extern\s+\"C\"|namespace\b)")


def functions(lines):
    """Yields (name, first_line, last_line) of the function definitions."""
    start = None
    name = None
    in_body = False
    for i, line in enumerate(lines, 1):
        if not in_body:
            if start is None:
                if line[:1].strip() and not NOT_SIGNATURE.match(line) and "(" in line:
                    start = i
                    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", line)
                    name = m.group(1) if m else "?"
                else:
                    continue
            # a signature ends with "{" (definition) or ";" (declaration)
            code = re.sub(r"//.*|/\*.*?\*/", "", line).rstrip()
            if code.endswith(";") and "{" not in code:
                start = None
                continue
            if "{" in code:
                if code.endswith("}"):  # a one-line function
                    yield name, start, i
                    start = None
                else:
                    in_body = True
            elif start is not None and i - start > 8:  # not a signature after all
                start = None
        elif line.startswith("}"):
            yield name, start, i
            start = None
            in_body = False


INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
# what the model's headers may not reach (module directories and their public headers)
MODEL_FORBIDDEN = ("train", "eval", "comm", "ckpt")
MODEL_FORBIDDEN_PUBLIC = ("dtrain/trainer.h", "dtrain/eval.h", "dtrain/comm.h", "dtrain/ckpt.h", "dtrain/loss.h")


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as fh:
        return [m.group(1) for m in map(INCLUDE.match, fh) if m]


def resolve(root, including, name):
    """The file an include names: next to the including file, else under src/ or include/."""
    for base in (os.path.dirname(including), os.path.join(root, "src"), os.path.join(root, "include")):
        p = os.path.normpath(os.path.join(base, name))
        if os.path.exists(p):
            return p
    return None


def include_rules(root):
    bad = []
    src = os.path.join(root, "src")
    for d, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith(SOURCE_EXT):
                continue
            path = os.path.join(d, f)
            module = os.path.relpath(path, src).split(os.sep)[0]
            for name in includes(path):
                target = resolve(root, path, name)
                if not target or not target.endswith("_internal.h") or not target.startswith(src + os.sep):
                    continue
                owner = os.path.relpath(target, src).split(os.sep)[0]
                if owner != module:
                    bad.append(f"{os.path.relpath(path, root)}: includes {name}, internal to src/{owner}")
    # the model's headers, followed through the headers they include
    todo = [os.path.join(root, "include", "dtrain", "model.h")]
    todo += [os.path.join(src, "model", f) for f in sorted(os.listdir(os.path.join(src, "model"))) if f.endswith(".h")]
    seen = set()
    while todo:
        h = todo.pop()
        if h in seen:
            continue
        seen.add(h)
        for name in includes(h):
            target = resolve(root, h, name)
            if not target:
                continue  # a system or third-party header
            rel = os.path.relpath(target, root)
            parts = rel.split(os.sep)
            if (parts[0] == "src" and parts[1] in MODEL_FORBIDDEN) or name in MODEL_FORBIDDEN_PUBLIC:
                bad.append(f"{os.path.relpath(h, root)}: the model's headers include {name}")
            todo.append(target)
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--max-file-lines", type=int, default=600)
    ap.add_argument("--max-function-lines", type=int, default=120)
    a = ap.parse_args()
    a.root = os.path.realpath(a.root)
    bad = []
    n_files = n_funcs = 0
    for top in ("src", "include", "kernels"):
        for d, _, files in os.walk(os.path.join(a.root, top)):
            for f in sorted(files):
                if not f.endswith(SOURCE_EXT):
                    continue
                path = os.path.join(d, f)
                rel = os.path.relpath(path, a.root)
                with open(path, encoding="utf-8", errors="replace") as fh:
                    lines = fh.read().split("\n")
                if lines and lines[-1] == "":
                    lines.pop()
                n_files += 1
                if top == "src" and len(lines) > a.max_file_lines:
                    bad.append(f"{rel}: {len(lines)} lines (more than {a.max_file_lines})")
                for name, lo, hi in functions(lines):
                    n_funcs += 1
                    if hi - lo + 1 > a.max_function_lines:
                        bad.append(f"{rel}:{lo}: function {name} has {hi - lo + 1} lines (more than {a.max_function_lines})")
    bad += include_rules(a.root)
    for b in bad:
        print(b)
    print(f"code_shape: {n_files} files, {n_funcs} functions, {len(bad)} rule violations")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
