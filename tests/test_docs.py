"""The documentation: every relative link of README.md leads somewhere (a file of the checkout,
and a heading there when it names one), and the site builds strictly: `mkdocs build --strict`
fails on a broken link or anchor, a page missing from the nav, or a generated page
(command line, HTTP schema, bounds.yaml) that cannot be made (mkdocs.yml, tools/docs_hooks.py)."""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
README_MAX_LINES = 250  # the front door: what it is, two commands, the main commands, headline figures, links


def slug(heading: str) -> str:
    """Python-Markdown's toc slug (what mkdocs uses for a heading's anchor) of a Markdown heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(markdown: str) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", FENCE.sub("", markdown), re.M)}


def relative_links(markdown: str) -> list[str]:
    return [t for t in LINK.findall(FENCE.sub("", markdown)) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def test_readme_links_resolve():
    readme = (ROOT / "README.md").read_text()
    links = relative_links(readme)
    assert links, "README.md links nowhere: the docs should be linked from it"
    broken = []
    for target in links:
        path, _, anchor = target.partition("#")
        file = (ROOT / path) if path else ROOT / "README.md"
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, "README.md: " + "; ".join(broken)


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): the rest in docs/"


def test_docs_build_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'")
    pytest.importorskip("material", reason="the docs extra is not installed: pip install -e '.[docs]'")
    site = tmp_path / "site"
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    cli = (site / "reference" / "cli.html").read_text()
    for command in ("vmc-duel race", "vmc-duel tournament", "vmc-duel train controller", "vmc-duel export"):
        assert command in cli, f"the generated command line reference lacks {command}"
    assert "/update_knobs" in (site / "reference" / "http.html").read_text()
    assert (site / "reference" / "openapi.json").is_file()
