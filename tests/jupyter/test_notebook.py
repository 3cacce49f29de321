"""A whole notebook through nbclient, the way `jupyter nbconvert --execute` runs one."""
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

pytestmark = pytest.mark.usefixtures("kernel_prefix")


def notebook(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def test_notebook_runs_end_to_end():
    nb = notebook("x = 6 * 7", "x", 'print("hi")', "sw.profile(false)", 'print("no cost line")')
    NotebookClient(nb, kernel_name="stepwise", timeout=60).execute()
    outs = [c.outputs for c in nb.cells]
    assert outs[1][0]["output_type"] == "execute_result" and outs[1][0]["data"]["text/plain"] == "42"
    assert outs[1][0]["execution_count"] == 2
    assert outs[2][0]["text"].startswith("hi\n")
    assert "".join(o["text"] for o in outs[4]) == "no cost line\n"


def test_notebook_error_stops_the_run():
    nb = notebook('error("boom")', "never = true")
    with pytest.raises(CellExecutionError, match="boom"):
        NotebookClient(nb, kernel_name="stepwise", timeout=60).execute()
    assert nb.cells[1].outputs == []
