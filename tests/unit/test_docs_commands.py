"""Every `citycredit …` command README.md and docs/*.md show in a shell block is one the CLI has
(`citycredit <command> --help` exits 0), and every relative link points at a file that exists
(issue 22: a newcomer copies what the README shows). `make demo` and `make test` themselves run
in CI as the suite."""
from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from citycredit.cli import cli

PROJECT = Path(__file__).resolve().parents[2]
PAGES = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^```([\w-]*)\s*$")
# `citycredit` where a shell command starts: line start, after ; | & ( $( or a variable assignment
COMMAND = re.compile(r"(?:^|[;|&(]\s*|\$\(\s*|^(?:[A-Z_]+=\S*\s+)+)(?:\S*/)?citycredit"
                     r"((?:\s+[a-z][a-z-]*)+)", re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def shell_blocks(page: Path) -> list[str]:
    blocks, current, language = [], None, ""
    for line in page.read_text(encoding="utf-8").splitlines():
        fence = FENCE.match(line.strip())
        if fence and current is None:
            current, language = [], fence.group(1).lower()
        elif line.strip() == "```" and current is not None:
            if language in SHELL:
                blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def shown_commands() -> dict[tuple[str, ...], str]:
    """{(command, subcommand…): the first page showing it}."""
    found: dict[tuple[str, ...], str] = {}
    for page in PAGES:
        for block in shell_blocks(page):
            block = re.sub(r"\\\n", " ", block)           # continued lines
            for line in block.splitlines():
                code = line.split(" #")[0]
                for match in COMMAND.finditer(code.strip()):
                    words = match.group(1).split()
                    path, group = [], cli
                    for word in words:              # down the command groups while they match
                        if not isinstance(group, click.Group) or word not in group.commands:
                            if not path:
                                path.append(word)   # an unknown command: reported by the test
                            break
                        path.append(word)
                        group = group.commands[word]
                    found.setdefault(tuple(path), page.name)
    return found


COMMANDS = shown_commands()


def test_the_pages_show_the_commands_a_newcomer_needs():
    shown = {c[0] for c in COMMANDS}
    assert {"run", "config", "simulate", "evaluate", "serve", "audit"} <= shown, shown
    assert ("audit", "verify") in COMMANDS


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=" ".join)
def test_every_command_shown_runs(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, (f"`citycredit {' '.join(command)} --help` (shown in "
                                   f"{COMMANDS[command]}): {result.output}")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_points_at_a_file(page):
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue                                    # a URL or an anchor on the page
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{page.name}: links to missing files: {broken}"


def test_the_readme_stays_short_and_links_the_docs():
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)\)", readme))
    assert linked >= {"operating.md", "airflow.md", "cluster.md", "privacy.md", "lookups.md",
                      "policy-tools.md", "rule-format.md", "configuration.md", "performance.md",
                      "architecture.md", "departments.md"}, linked
