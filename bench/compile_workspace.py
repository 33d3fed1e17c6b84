"""Benchmark: check and compile a generated workspace of 100 templates x 50 fields.

Prints the time of each stage (median of several runs) and compares the whole
pipeline with two ceilings measured in the same run on the same files: parsing
the YAML alone with ruamel.yaml, and parsing it with the C-accelerated safe
loader (the least any YAML-based checker could spend). Goal: under 1 s in total.

    .venv/bin/python bench/compile_workspace.py [--templates 100] [--fields 50] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ruamel.yaml import YAML  # noqa: E402

from engine.check import check_document  # noqa: E402
from engine.compile import compile_schema  # noqa: E402
from engine.diagnostics import Diagnostics  # noqa: E402
from engine.load import load_workspace  # noqa: E402
from engine.workspace import open_workspace  # noqa: E402
from engine.yamlnodes import compose_all  # noqa: E402

TYPES = ["input", "text", "number", "decimal", "boolean", "date", "datetime", "email", "url", "select"]


def generate(root: Path, templates: int, fields: int) -> None:
    """Write a workspace: one file per template (with its queue), groups in their own file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "routecard.yaml").write_text("name: bench\ntimezone: Europe/Berlin\n")
    (root / "groups.yaml").write_text(
        "".join(f"---\nkind: Group\nname: group_{g}\nsupervisor: boss{g}\nmembers: [a{g}, b{g}]\n" for g in range(5))
    )
    for t in range(templates):
        lines = [f"kind: Template\nname: template_{t}\nlabel: Template {t}\nteam: group_{t % 5}\n",
                 f"numbering: {{prefix: T{t}-}}\nfields:\n"]
        for f in range(fields):
            kind = TYPES[f % len(TYPES)]
            lines.append(f"  - name: field_{f}\n    type: {kind}\n    label: Field {f} of template {t}\n")
            if kind == "select":
                lines.append("    options: [alpha, beta, gamma]\n    default: beta\n")
            if kind == "decimal":
                lines.append("    digits: 14\n    places: 2\n")
            if f % 7 == 0:
                lines.append("    required: true\n")
        lines.append(f"---\nkind: Queue\nname: queue_{t}\ntemplates: [template_{t}]\nsteps:\n")
        for s in range(4):
            lines.append(f"  - name: step_{s}\n    group: group_{s % 5}\n    actions: [{{name: act_{s}}}]\n")
        (root / f"template_{t}.yaml").write_text("".join(lines))


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--templates", type=int, default=100)
    parser.add_argument("--fields", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        generate(root, args.templates, args.fields)
        files = sorted(root.glob("*.yaml"))
        size = sum(p.stat().st_size for p in files)
        texts = [p.read_text() for p in files]

        def parse_rt() -> None:
            yaml = YAML(typ="rt", pure=True)
            for text in texts:
                list(yaml.load_all(text))

        def parse_c() -> None:
            for text in texts:
                list(compose_all(text))

        def load() -> None:
            load_workspace(root, Diagnostics())

        documents = load_workspace(root, Diagnostics())

        def check() -> None:
            d = Diagnostics()
            for document in documents:
                check_document(document, d)

        linked = open_workspace(root)

        def pipeline() -> None:
            compile_schema(open_workspace(root))

        t_c = median_time(parse_c, args.runs)
        t_rt = median_time(parse_rt, args.runs)
        t_load = median_time(load, args.runs)
        t_check = median_time(check, args.runs)
        t_compile = median_time(lambda: compile_schema(linked), args.runs)
        t_all = median_time(pipeline, args.runs)
        fields = sum(len(t.fields) for t in linked.templates.values())
        print(f"workspace: {args.templates} templates x {args.fields} fields = {fields} fields, "
              f"{len(files)} files, {size / 1024:.0f} KiB")
        print(f"ceiling  yaml compose only (libyaml)     {t_c * 1000:8.1f} ms")
        print(f"ceiling  yaml parse, round-trip (pure)  {t_rt * 1000:8.1f} ms")
        print(f"stage    load (parse + positions)       {t_load * 1000:8.1f} ms")
        print(f"stage    check (JSON Schema + model)    {t_check * 1000:8.1f} ms")
        print(f"stage    compile schema                 {t_compile * 1000:8.1f} ms")
        print(f"total    check + compile                {t_all * 1000:8.1f} ms  (goal < 1000 ms: "
              f"{'met' if t_all < 1 else 'NOT met'})")
        print(f"ratio    total / round-trip parse       {t_all / t_rt:8.2f}x")
        print(f"ratio    total / libyaml compose        {t_all / t_c:8.2f}x")


if __name__ == "__main__":
    main()
