"""Install ``muxly_counter_plugin`` as a real distribution: a module plus a ``.dist-info`` with entry points.

The folder is put on ``sys.path``, so :func:`importlib.metadata.entry_points` finds the ``muxly.connectors``
entry points exactly as it would for a package installed with pip.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

ENTRY_POINTS = """[muxly.connectors]
counter = muxly_counter_plugin:CounterConnector
wrong = muxly_counter_plugin:NotAConnector
broken = muxly_counter_plugin_missing:Nothing
"""


def install_plugin(target: Path) -> Path:
    """Install the plugin into ``target`` and put it on ``sys.path``; return ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).with_name("muxly_counter_plugin.py"), target / "muxly_counter_plugin.py")
    info = target / "muxly_counter_plugin-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: muxly-counter-plugin\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (info / "RECORD").write_text("")
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    return target


def uninstall_plugin(target: Path) -> None:
    """Take the plugin off ``sys.path`` again."""
    if str(target) in sys.path:
        sys.path.remove(str(target))
    sys.modules.pop("muxly_counter_plugin", None)
    importlib.invalidate_caches()
