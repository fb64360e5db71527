"""Running the analyst notebooks headless (`make notebooks`, `citycredit notebooks`, the e2e test).

The notebooks are jupytext `py:percent` files in `notebooks/` (reviewable diffs, no outputs in
git). Each run converts one to a notebook, executes it with papermill on the `citycredit` kernel
(registered in this interpreter's prefix: the venv's python, no user-level state), with the
parameters injected into its `parameters` cell and a timeout per cell, and renders the executed
notebook to a self-contained HTML page (figures embedded) with nbconvert.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

#: the notebooks, in the order an analyst reads them
NOTEBOOKS = ("score_distributions", "explain_a_subject", "rule_contributions",
             "rule_change_impact", "model_evaluation", "data_quality")
KERNEL = "citycredit"
#: seconds a cell may run (the policy notebooks run a Spark job in one cell)
CELL_TIMEOUT = 900
#: seconds the kernel may take to start
START_TIMEOUT = 120
#: the figure of each notebook the README shows (docs/notebook-<name>.png), by position
PICTURES = {"score_distributions": 0, "explain_a_subject": 0, "rule_contributions": 0,
            "rule_change_impact": 0, "model_evaluation": 0, "data_quality": 2}
#: an image/png output smaller than this (bytes, decoded) is an empty figure
MIN_FIGURE_BYTES = 4000


class NotebookFailed(RuntimeError):
    """A cell raised, or a figure came out empty; the message names the notebook and cell."""


def notebook_folder() -> Path:
    """`notebooks/` of the source tree this package is in."""
    return Path(__file__).resolve().parents[1] / "notebooks"


def register_kernel() -> Path:
    """The `citycredit` kernel spec for this interpreter, written into sys.prefix (the venv's
    share/jupyter/kernels) when missing or pointing at another python. Returns its folder."""
    from jupyter_client.kernelspec import KernelSpecManager

    folder = Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL
    spec = folder / "kernel.json"
    if spec.is_file() and json.loads(spec.read_text())["argv"][0] == sys.executable:
        return folder
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL, display_name="citycredit", prefix=sys.prefix)
    spec_found = KernelSpecManager().find_kernel_specs().get(KERNEL)
    if spec_found is None or Path(spec_found).resolve() != folder.resolve():
        raise NotebookFailed(f"kernel {KERNEL!r} registered in {folder} but jupyter finds "
                             f"{spec_found}: another kernel of that name comes first")
    return folder


def figure_sizes(notebook) -> list[list[int]]:
    """Per code cell, the decoded byte sizes of its image/png outputs."""
    import base64

    return [[len(base64.b64decode(output["data"]["image/png"]))
             for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]
            for cell in notebook.cells if cell.cell_type == "code"]


def figures(notebook) -> list[bytes]:
    """The PNG figures of an executed notebook, in order."""
    import base64

    return [base64.b64decode(output["data"]["image/png"]) for cell in notebook.cells
            if cell.cell_type == "code" for output in cell.get("outputs", [])
            if "image/png" in output.get("data", {})]


def execute(name: str, parameters: dict, out: Path, timeout: int = CELL_TIMEOUT) -> dict:
    """Execute notebooks/<name>.py with `parameters` into `<out>/<name>.ipynb` and render
    `<out>/<name>.html`. Returns {"notebook", "html", "figures" (count), "seconds"}.

    Raises NotebookFailed naming the notebook and the failing cell, or the cell with an empty
    figure, or a notebook that draws none."""
    import jupytext
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    started = time.perf_counter()
    out = Path(out)
    (out / "_source").mkdir(parents=True, exist_ok=True)
    source = out / "_source" / f"{name}.ipynb"
    nbformat.write(jupytext.read(notebook_folder() / f"{name}.py"), source)
    executed = out / f"{name}.ipynb"
    try:
        papermill.execute_notebook(str(source), str(executed), parameters=parameters,
                                   kernel_name=KERNEL, cwd=str(notebook_folder()),
                                   execution_timeout=timeout, start_timeout=START_TIMEOUT,
                                   progress_bar=False, log_output=False)
    except papermill.PapermillExecutionError as error:
        raise NotebookFailed(f"notebook {name}: cell {error.exec_count} raised "
                             f"{error.ename}: {error.evalue} (executed copy: {executed})") from None
    notebook = nbformat.read(executed, as_version=4)
    sizes = figure_sizes(notebook)
    empty = [i for i, cell in enumerate(sizes) if any(s < MIN_FIGURE_BYTES for s in cell)]
    if empty or not any(sizes):
        raise NotebookFailed(f"notebook {name}: " + (f"empty figure in code cell(s) {empty}"
                                                     if empty else "no figure drawn"))
    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(notebook)
    html = out / f"{name}.html"
    html.write_text(body, encoding="utf-8")
    return {"notebook": str(executed), "html": str(html),
            "figures": sum(len(cell) for cell in sizes),
            "seconds": round(time.perf_counter() - started, 1)}


def render_all(warehouse: Path, out: Path, names=NOTEBOOKS, say=print,
               parameters: dict | None = None, pictures: Path | None = None) -> dict[str, dict]:
    """Every notebook of `names` executed against `warehouse` into `out` (HTML beside the
    executed .ipynb); parameters beyond the warehouse apply to every notebook that has them.
    pictures: a folder to write each notebook's README figure to (`notebook-<name>.png`)."""
    import nbformat

    register_kernel()
    results = {}
    for name in names:
        say(f"notebook {name} …")
        results[name] = execute(name, {"warehouse": str(Path(warehouse).resolve()),
                                       **(parameters or {})}, out)
        say(f"  {results[name]['figures']} figures, {results[name]['seconds']} s → "
            f"{results[name]['html']}")
        if pictures is not None:
            drawn = figures(nbformat.read(results[name]["notebook"], as_version=4))
            Path(pictures).mkdir(parents=True, exist_ok=True)
            target = Path(pictures) / f"notebook-{name}.png"
            target.write_bytes(drawn[min(PICTURES.get(name, 0), len(drawn) - 1)])
            say(f"  picture → {target}")
    return results
