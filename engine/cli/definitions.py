"""The commands on definitions: check, test, schema, init, plan, apply, diagram."""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib import resources
from pathlib import Path

from ..diagnostics import Diagnostics
from ..errors import UsageError
from ..workspace import open_workspace
from .common import database_url, print_diagnostics, workspace_dir


def cmd_check(args: argparse.Namespace) -> int:
    root = workspace_dir(args.dir)
    diagnostics = Diagnostics()
    linked = open_workspace(root, diagnostics)
    print_diagnostics(diagnostics.sorted(), sys.stderr)
    counts = {
        "templates": len(linked.templates),
        "fields": sum(len(t.fields) for t in linked.templates.values()),
        "queues": len(linked.queues),
        "steps": sum(len(q.steps) for q in linked.queues.values()),
        "groups": len(linked.groups),
        "rules": len(linked.rules),
        "forms": len(linked.forms),
        "SLAs": len(linked.slas),
    }
    summary = ", ".join(f"{n} {what}" for what, n in counts.items())
    print(f"{root}: ok ({summary}); definition version {linked.fingerprint[:12]}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from ..scenarios import read_scenarios, run_scenarios

    root = workspace_dir(args.dir)
    linked = open_workspace(root)
    diagnostics = Diagnostics()
    found = read_scenarios(root, diagnostics)
    if diagnostics.items:
        print_diagnostics(diagnostics.sorted(), sys.stderr)
        return 1
    if not found:
        print(f"{root}: no scenarios (write them as YAML files in {root / 'tests'})", file=sys.stderr)
        return 1
    outcomes = asyncio.run(run_scenarios(linked, found))
    for outcome in outcomes:
        if outcome.failure is None:
            print(f"ok    {outcome.location}: {outcome.name}")
        else:
            print(f"FAIL  {outcome.location}: {outcome.name}\n{outcome.failure}\n")
    failed = sum(o.failure is not None for o in outcomes)
    print(f"{len(outcomes)} scenario{'s' if len(outcomes) != 1 else ''}, {failed} failed")
    return 1 if failed else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from ..schemas import write_schemas

    target = Path(args.out)
    for path in write_schemas(target):
        print(path)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    if target.exists() and any(target.iterdir()):
        raise UsageError(f"{args.dir}: the folder is not empty; give a new or empty folder")
    target.mkdir(parents=True, exist_ok=True)
    starter = resources.files("definitions") / "starter"
    for folder in ("", "tests"):
        (target / folder).mkdir(exist_ok=True)
        for entry in (starter / folder).iterdir() if folder else starter.iterdir():
            if entry.name.endswith(".yaml"):
                (target / folder / entry.name).write_text(entry.read_text(encoding="utf-8"), encoding="utf-8")
    from ..schemas import write_editor_settings

    write_editor_settings(target)
    print(f"created workspace {target}; next: routecard check {target}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from ..migrate import plan_for

    root = workspace_dir(args.dir)
    linked = open_workspace(root)
    url = database_url(args, root, linked.settings.database)
    plan = asyncio.run(plan_for(linked, url))
    print(plan.render())
    return 1 if plan.refused else 0


def cmd_apply(args: argparse.Namespace) -> int:
    from ..migrate import apply_workspace

    root = workspace_dir(args.dir)
    linked = open_workspace(root)
    url = database_url(args, root, linked.settings.database)
    plan = asyncio.run(apply_workspace(linked, url, allow_destructive=args.allow_destructive))
    print(plan.render(applied=True))
    return 0


DIAGRAM_SUFFIXES = {"svg": ".svg", "mermaid": ".mmd"}


def cmd_diagram(args: argparse.Namespace) -> int:
    """Draw a queue's workflow: SVG and Mermaid files, or Mermaid text on stdout (see docs/diagrams.md)."""
    import re

    from ..check import did_you_mean
    from ..diagram import queue_mermaid, queue_svg
    from ..model.common import LANGUAGE_PATTERN

    root = workspace_dir(args.dir)
    if args.language is not None and not re.match(LANGUAGE_PATTERN, args.language):
        raise UsageError(f"--language {args.language}: give a language code such as en or de-CH")
    linked = open_workspace(root)
    queue = linked.queues.get(args.queue)
    if queue is None:
        known = sorted(linked.queues)
        hint = did_you_mean(args.queue, known) or (f"; queues: {', '.join(known)}" if known else "; it defines none")
        raise UsageError(f"{root}: no queue `{args.queue}`{hint}")
    formats = [args.format] if args.format else []
    if args.output and args.output != "-" and not formats:
        suffix = Path(args.output).suffix.lower()
        found = [name for name, known_suffix in DIAGRAM_SUFFIXES.items() if suffix in (known_suffix, f".{name}")]
        if not found:
            raise UsageError(f"--output {args.output}: cannot tell the format from the name; add --format svg or mermaid")
        formats = found
    if not formats:
        formats = ["svg", "mermaid"]
    if args.output == "-" and len(formats) > 1:
        raise UsageError("--output -: give --format svg or mermaid to write one diagram to standard output")
    for kind in formats:
        text = (queue_svg if kind == "svg" else queue_mermaid)(queue, linked, args.language)
        if args.output == "-" or (kind == "mermaid" and args.format == "mermaid" and not args.output):
            sys.stdout.write(text)
            continue
        target = Path(args.output) if args.output else Path(f"{queue.name}{DIAGRAM_SUFFIXES[kind]}")
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{target}: cannot write the diagram: {exc.strerror}") from None
        print(f"wrote {target}")
    return 0
