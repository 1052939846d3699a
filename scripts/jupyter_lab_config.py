"""JupyterLab's configuration for ``make lab``: saving a course notebook after a run leaves ``git status`` clean.

``make lab`` passes it with ``--config``. Its post-save hook hands every saved notebook to
``scripts/notebook_filter.py``'s ``restat``: where only outputs and execution counts changed, the
index learns the file's new size (the committed version stays); an edited cell still shows as a change.
"""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("lthkit_notebook_filter", Path(__file__).with_name("notebook_filter.py"))
_filter = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_filter)


def restat_after_save(model, os_path, contents_manager, **kwargs):
    """FileContentsManager.post_save_hook: see the module docstring."""
    if model.get("type") == "notebook":
        _filter.restat(os_path)


c = get_config()  # noqa: F821 - defined by traitlets when it loads this file
c.FileContentsManager.post_save_hook = restat_after_save
