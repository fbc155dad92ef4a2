"""Convert notebooks between .ipynb and a percent-format .py for editing.

    python tools/nbtool.py py2nb notebooks/src.py notebooks/X.ipynb
    python tools/nbtool.py nb2py notebooks/X.ipynb /tmp/X.py

Cells start with ``# %%`` (code) or ``# %% [markdown]``; tags follow as
``# %% tags=["parameters"]``. Markdown lines are written as ``# `` comments. Notebooks
are written without outputs (the repository stores them clean; the build executes them).
"""

from __future__ import annotations

import json
import re
import sys

import nbformat

HEADER = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")


def py2nb(src: str, dst: str) -> None:
    cells, cur, kind, tags = [], [], None, []

    def flush() -> None:
        if kind is None:
            return
        text = "\n".join(cur).strip("\n")
        if kind == "markdown":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())
            cell = nbformat.v4.new_markdown_cell(text)
        else:
            cell = nbformat.v4.new_code_cell(text)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in open(src, encoding="utf-8").read().splitlines():
        m = HEADER.match(line)
        if m:
            flush()
            cur, kind = [], "markdown" if m.group("md") else "code"
            tags = json.loads(m.group("tags")) if m.group("tags") else []
        else:
            cur.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:02d}"
    nbformat.write(nb, dst)


def nb2py(src: str, dst: str) -> None:
    nb = nbformat.read(src, as_version=4)
    out = []
    for c in nb.cells:
        tags = c.metadata.get("tags", [])
        t = f" tags={json.dumps(tags)}" if tags else ""
        if c.cell_type == "markdown":
            out.append(f"# %% [markdown]{t}")
            out.extend("# " + line if line else "#" for line in c.source.splitlines())
        else:
            out.append(f"# %%{t}")
            out.extend(c.source.splitlines())
        out.append("")
    open(dst, "w", encoding="utf-8").write("\n".join(out))


if __name__ == "__main__":
    cmd, a, b = sys.argv[1:4]
    {"py2nb": py2nb, "nb2py": nb2py}[cmd](a, b)
