"""Remove outputs, execution counts and run metadata from notebooks, in place,
so git holds only their source (a test checks it).

    python tools/strip_notebooks.py                 # every notebooks/*.ipynb
    python tools/strip_notebooks.py path/to/a.ipynb
"""

import pathlib
import sys

import nbformat

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"


def strip(notebook):
    """Returns True if anything was removed."""
    changed = notebook.metadata.pop("widgets", None) is not None
    for cell in notebook.cells:
        changed |= cell.metadata.pop("execution", None) is not None
        if cell.cell_type == "code":
            changed |= bool(cell.outputs) or cell.execution_count is not None
            cell.outputs = []
            cell.execution_count = None
    return changed


def main(paths):
    for path in paths or sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        if strip(notebook):
            nbformat.write(notebook, path)
            print(f"stripped {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
