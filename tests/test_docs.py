"""The documentation ships with the code: every citation of the theory page resolves.

Code, docstrings, command output and the report cite ``docs/theory.md §N`` and claim ids. Each ``§N`` must
be a section of ``docs/theory.md`` (a heading ``## N. ...``), each ``ID`` a claim heading in it,
every registered claim must have its heading, and nothing may point at a file outside the
repository.
"""
import pathlib
import re

import pytest

from proofs_check.registry import all_claims

ROOT = pathlib.Path(__file__).resolve().parents[1]
THEORY = ROOT / "docs" / "theory.md"
PACKAGES = ("linear_theory", "proofs_check", "variational_nets")
#: ``docs/theory.md``, then an optional ``§N``, then an optional claim id (``C4``, ``(C10)``, ``claims C1``).
CITATION = re.compile(r"docs/theory\.md(?:\s*§\s*(\d+))?(?:[\s,(]*(?:claims?\s+)?([CS]\d+)\b)?")


def _sections_and_claims():
    text = THEORY.read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (\d+)\. ", text, flags=re.M))
    claims = set(re.findall(r"^### ([A-Z]\d+[a-z]?)\s*$", text, flags=re.M))
    return sections, claims


def _package_texts():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT), path.read_text(encoding="utf-8")


def _claim_family(claim_id: str) -> str:
    return claim_id.split("-", 1)[0]


def test_every_citation_in_the_code_resolves():
    sections, claims = _sections_and_claims()
    found = 0
    bad = []
    for path, text in _package_texts():
        for match in CITATION.finditer(text):
            found += 1
            section, claim_id = match.groups()
            # a bare mention of the page needs nothing more than the page itself
            if (section and section not in sections) or (claim_id and claim_id not in claims):
                bad.append(f"{path}: {match.group(0)}")
    assert found > 20, "expected the code to cite docs/theory.md"
    assert not bad, "citations without a section or claim in docs/theory.md:\n" + "\n".join(bad)


def test_no_reference_to_files_outside_the_repository():
    pattern = re.compile(r"THEORY\.md|THEORY §|shared/spec|\.\./shared")
    offenders = [f"{path}: {m.group(0)}" for path, text in _package_texts() for m in pattern.finditer(text)]
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        offenders += [f"{doc.name}: {m.group(0)}" for m in pattern.finditer(doc.read_text(encoding="utf-8"))]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("claim", all_claims(), ids=lambda c: c.id)
def test_every_claim_has_a_heading_and_a_resolving_reference(claim):
    sections, claims = _sections_and_claims()
    assert _claim_family(claim.id) in claims, f"docs/theory.md has no heading '### {_claim_family(claim.id)}'"
    for match in CITATION.finditer(claim.reference + " " + claim.statement):
        section, claim_id = match.groups()
        assert section is not None or claim_id is not None, f"{match.group(0)}: cite a section or a claim"
        assert section is None or section in sections, match.group(0)
        assert claim_id is None or claim_id in claims, match.group(0)


def test_readme_links_the_theory_and_the_site():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/theory.md" in readme
    assert "sphinx" in readme.lower()
