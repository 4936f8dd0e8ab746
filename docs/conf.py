"""Sphinx configuration: the theory pages (Markdown, through MyST) and the API reference built from
the numpydoc docstrings. Build with ``python -m sphinx -W -b html docs docs/_build/html``."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "ibvi-theory"
author = "the ibvi-theory developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_theme_options = {"page_width": "1180px", "sidebar_width": "240px"}
autodoc_default_options = {"members": True}
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# CuPy is optional: its absence must not break the API pages.
autodoc_mock_imports = ["cupy"]
suppress_warnings = ["myst.header"]
# Every documented public name lists its parameters and its return value.
numpydoc_validation_checks = {"PR01", "PR02", "RT01"}
