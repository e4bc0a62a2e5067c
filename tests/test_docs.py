"""The docs list every command, option, setting, field and validation code."""

from __future__ import annotations

import re
from pathlib import Path

import click

from complaint_core.findings import codes_markdown
from complaint_core.merged.model import SHEET_ORDER
from complaint_core.playbook import playbook_markdown
from complaint_core.schema import FIELDS
from complaint_core.settings import SETTINGS
from complaint_desk.cli import main
from complaint_desk.docgen import schema_markdown
from scheduler.config import KEYS as CONFIG_KEYS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_schema_doc_is_generated_from_the_schema():
    assert (DOCS / "schema.md").read_text(encoding="utf-8") == schema_markdown(), \
        "run: python -m complaint_desk.docgen"


def test_every_field_and_setting_is_documented():
    text = (DOCS / "schema.md").read_text(encoding="utf-8")
    assert all(f"`{f.key}`" in text and f.zh in text for f in FIELDS)
    assert all(f"`{s.key}`" in text for s in SETTINGS)


def _commands(command: click.Command = main, path: tuple[str, ...] = ("complaint-desk",)):
    """Every command and subcommand, walking each click group down to its leaves."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


def _options(command: click.Command) -> list[str]:
    return [opt for param in command.params for opt in getattr(param, "opts", []) if opt.startswith("-")]


def test_every_command_and_option_of_every_group_is_in_cli_md():
    intro, *sections = (DOCS / "cli.md").read_text(encoding="utf-8").split("\n## ")
    walked = list(_commands())
    assert ("complaint-desk", "mail", "list") in [p for p, _ in walked]   # the walk reaches subcommands
    for path, command in walked:
        name = " ".join(path)
        # a command's options are documented in its own section(s): `## \`complaint-desk mail list ...`
        where = intro if len(path) == 1 else "".join(
            s for s in sections if re.match(rf"`{re.escape(name)}[ `]", s))
        assert where, f"docs/cli.md has no section for {name}"
        for opt in _options(command):
            assert opt in where, f"docs/cli.md: {name} does not mention {opt}"


def test_contract_lists_every_command_field_sheet_and_config_key():
    text = (DOCS / "contract.md").read_text(encoding="utf-8")
    for path, command in _commands():
        if len(path) > 1 and not isinstance(command, click.Group):
            assert f"`{' '.join(path)}`" in text, path
    assert all(f"`{f.key}`" in text for f in FIELDS)
    assert all(f"**{sheet}**" in text for sheet in SHEET_ORDER)
    assert all(f"`{k.section}.{k.name}`" in text for k in CONFIG_KEYS)
    assert "contract.md" in (DOCS / "index.md").read_text(encoding="utf-8")


def test_code_and_tests_point_to_the_contract_in_the_repository():
    # the design notes live outside the repository; what code and tests cite must be in docs/
    for folder in ("complaint_core", "complaint_desk", "excel_addin", "sync", "scheduler", "tests", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md"):
                assert "DESIGN.md" not in path.read_text(encoding="utf-8") or path.name == "test_docs.py", path


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
