"""The docs list every command, option, setting, field and validation code."""

from __future__ import annotations

from pathlib import Path

from complaint_core.findings import codes_markdown
from complaint_core.playbook import playbook_markdown
from complaint_core.schema import FIELDS
from complaint_core.settings import SETTINGS
from complaint_desk.cli import main
from complaint_desk.docgen import schema_markdown

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_schema_doc_is_generated_from_the_schema():
    assert (DOCS / "schema.md").read_text(encoding="utf-8") == schema_markdown(), \
        "run: python -m complaint_desk.docgen"


def test_every_field_and_setting_is_documented():
    text = (DOCS / "schema.md").read_text(encoding="utf-8")
    assert all(f"`{f.key}`" in text and f.zh in text for f in FIELDS)
    assert all(f"`{s.key}`" in text for s in SETTINGS)


def test_every_command_and_option_is_in_cli_md():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for name, command in main.commands.items():
        assert f"complaint-desk {name}" in text, name
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt in text, (name, opt)


def test_rules_doc_lists_every_code():
    assert codes_markdown() in (DOCS / "rules.md").read_text(encoding="utf-8")
    assert playbook_markdown() in (DOCS / "rules.md").read_text(encoding="utf-8"), \
        "paste complaint_core.playbook.playbook_markdown() into docs/rules.md"


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = readme[:600]
    assert "complaint-desk demo" in head and "bash scripts/test.sh" in head
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_changelog_keeps_a_changelog_form():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text and "Keep a Changelog" in text


def test_windows_install_covers_python_the_addin_and_the_service():
    text = (DOCS / "install-windows.md").read_text(encoding="utf-8")
    for needle in ("Python 3.11", "venv", "pip install", "complaint-desk addin install", "service.md"):
        assert needle in text, needle


def test_readme_has_the_exact_setup_lines():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ("python3.11 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/complaint-desk demo"
            in readme[:600])
