"""Benchmark: compiled rule conditions against rule libraries from PyPI and hand-written Python.

Part 1 evaluates the same conditions on the same facts with
- Routecard's compiled closures (``engine.automation.conditions.compile_condition``),
- rule-engine (``rule_engine.Rule``), json-logic-qubit (``json_logic.jsonLogic``) and
  cel-python (``celpy``), each parsed/compiled once before timing,
- a hand-written Python function per condition (the ceiling),
and prints evaluations per second and the ratios. Goals: >= 10x the fastest library,
within 1.5x of hand-written code (hand-written time / compiled time >= 0.67).

Part 2 dispatches events to a workspace with 1,000 rules declared, of which a few react
to each event: rules indexed by trigger and watched field against a scan of every rule
(the contrast). Goal: under 1 ms per event. Only dispatch is timed (triggers from the
change's audit events, candidates, facts, conditions), not the matching rules' writes.

    .venv/bin/python bench/conditions.py [--seconds 0.5] [--rules 1000]

The libraries are in the ``bench`` extra: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.automation.conditions import compile_condition  # noqa: E402
from engine.automation.rules import RuleIndex, order_facts, triggers_of  # noqa: E402
from engine.model.automation import Condition  # noqa: E402
from engine.runtime.fields import FieldCodec  # noqa: E402
from engine.runtime.state import CORE_KEYS, Change, Order  # noqa: E402
from engine.workspace import open_workspace  # noqa: E402

FACTS: dict[str, Any] = {"priority": "high", "status": "open", "total": 1500, "kind": "bug", "count": 4,
                         "title": "Checkout page broken", "sender": "jo@acme.example", "changed": set()}
TYPES = {"total": "number", "kind": "select", "count": "number"}


# The hand-written functions do the work the compiled ones must do, no more and no less: the
# facts hold every field of the template and the core attributes, a custom field that is
# empty as None (so a number is compared only when it is not None; priority, status and
# title are never None); comparisons already answer True/False (no bool() around them).


def hand_one(f: dict[str, Any]) -> bool:
    return f["priority"] == "high"  # type: ignore[no-any-return]


def hand_two(f: dict[str, Any]) -> bool:
    return (total := f["total"]) is not None and total > 1000 and f["kind"] in ("bug", "feature")


def hand_nested(f: dict[str, Any]) -> bool:
    title = f["title"].casefold()
    return (((total := f["total"]) is not None and total > 1000 or f["priority"] == "urgent")
            and ("shop" in title or "checkout" in title) and not f["status"] == "cancelled")


CASES: list[dict[str, Any]] = [
    {"name": "one test",
     "yaml": {"field": "priority", "equals": "high"},
     "rule_engine": 'priority == "high"',
     "json_logic": {"==": [{"var": "priority"}, "high"]},
     "cel": 'priority == "high"',
     "hand": hand_one},
    {"name": "two tests",
     "yaml": {"all": [{"field": "total", "gt": 1000}, {"field": "kind", "in": ["bug", "feature"]}]},
     "rule_engine": 'total > 1000 and kind in ["bug", "feature"]',
     "json_logic": {"and": [{">": [{"var": "total"}, 1000]}, {"in": [{"var": "kind"}, ["bug", "feature"]]}]},
     "cel": 'total > 1000 && kind in ["bug", "feature"]',
     "hand": hand_two},
    {"name": "nested any/all/not",
     "yaml": {"all": [{"any": [{"field": "total", "gt": 1000}, {"field": "priority", "equals": "urgent"}]},
                      {"any": [{"field": "title", "contains": "shop"}, {"field": "title", "contains": "checkout"}]},
                      {"not": {"field": "status", "equals": "cancelled"}}]},
     "rule_engine": '(total > 1000 or priority == "urgent") and ("shop" in title.as_lower or '
                    '"checkout" in title.as_lower) and not status == "cancelled"',
     "json_logic": {"and": [{"or": [{">": [{"var": "total"}, 1000]}, {"==": [{"var": "priority"}, "urgent"]}]},
                            {"or": [{"in": ["shop", {"var": "title"}]}, {"in": ["Checkout", {"var": "title"}]}]},
                            {"!": {"==": [{"var": "status"}, "cancelled"]}}]},
     "cel": '(total > 1000 || priority == "urgent") && (title.matches("(?i)shop") || '
            'title.matches("(?i)checkout")) && !(status == "cancelled")',
     "hand": hand_nested},
]


def rates(functions: dict[str, Callable[[], Any]], seconds: float, rounds: int = 5) -> dict[str, float]:
    """Calls per second of each function: the best of ``rounds`` rounds, the functions taking turns
    in each round (so a busy machine slows them alike)."""
    loops: dict[str, int] = {}
    for name, function in functions.items():
        count = 1
        while True:
            start = time.perf_counter()
            for _ in range(count):
                function()
            if time.perf_counter() - start > seconds / (10 * rounds):
                break
            count *= 4
        loops[name] = count * 10
    best = dict.fromkeys(functions, 0.0)
    for _ in range(rounds):
        for name, function in functions.items():
            count = loops[name]
            start = time.perf_counter()
            for _ in range(count):
                function()
            best[name] = max(best[name], count / (time.perf_counter() - start))
    return best


def libraries(case: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """Each library's evaluation of the case, compiled once (a library not installed is left out)."""
    out: dict[str, Callable[[], Any]] = {}
    facts = {k: v for k, v in FACTS.items() if k != "changed"}
    try:
        import rule_engine

        rule = rule_engine.Rule(case["rule_engine"])
        out["rule-engine"] = lambda: rule.matches(facts)
    except ImportError:
        pass
    try:
        from json_logic import jsonLogic

        logic = case["json_logic"]
        out["json-logic-qubit"] = lambda: jsonLogic(logic, facts)
    except ImportError:
        pass
    try:
        import celpy

        environment = celpy.Environment()
        program = environment.program(environment.compile(case["cel"]))
        activation = {k: celpy.json_to_cel(v) for k, v in facts.items()}
        out["cel-python"] = lambda: program.evaluate(activation)
    except ImportError:
        pass
    return out


def part_one(seconds: float) -> None:
    print("Conditions: evaluations per second (higher is better)")
    for case in CASES:
        test = compile_condition(msgspec.convert(case["yaml"], Condition), TYPES)
        hand = case["hand"]
        expected = hand(FACTS)
        assert test(FACTS) == expected, case["name"]
        found = libraries(case)
        for name, function in found.items():
            assert bool(function()) == expected, (name, case["name"])
        measured = rates({"compiled": lambda: test(FACTS), "hand": lambda: hand(FACTS), **found}, seconds)
        compiled_rate, hand_rate = measured.pop("compiled"), measured.pop("hand")
        rates_ = measured
        print(f"\n  {case['name']}")
        print(f"    {'hand-written Python':<22} {hand_rate:>14,.0f}/s")
        print(f"    {'Routecard compiled':<22} {compiled_rate:>14,.0f}/s")
        for name, value in sorted(rates_.items(), key=lambda kv: -kv[1]):
            print(f"    {name:<22} {value:>14,.0f}/s")
        if rates_:
            best, best_rate = max(rates_.items(), key=lambda kv: kv[1])
            ratio = compiled_rate / best_rate
            print(f"    compiled / fastest library ({best}): {ratio:,.1f}x  (goal >= 10x: "
                  f"{'met' if ratio >= 10 else 'NOT met'})")
        else:
            print("    no rule library installed: pip install -e '.[bench]'")
        share = compiled_rate / hand_rate
        print(f"    compiled / hand-written: {share:.2f}  (goal >= 0.67, i.e. within 1.5x: "
              f"{'met' if share >= 1 / 1.5 else 'NOT met'})")


# -- part 2: dispatch with 1,000 rules --------------------------------------------------------------


def generate(root: Path, rules: int) -> None:
    """A workspace with two templates of 50 fields and ``rules`` rules, few of which react to any one event."""
    fields = "".join(f"      - {{name: field_{i}, type: number}}\n" for i in range(50))
    (root / "routecard.yaml").write_text("name: bench\n")
    (root / "defs.yaml").write_text(
        "kind: Group\nname: desk\nsupervisor: sue\nmembers: [sue]\n---\n"
        + "".join(f"kind: Template\nname: t{t}\nlabel: T{t}\nnumbering: {{prefix: T{t}-}}\nfields:\n{fields}---\n"
                  for t in range(2))
        + "kind: Queue\nname: q\ntemplates: [t0, t1]\nsteps:\n"
        + "".join(f"  - {{name: s{s}, group: desk}}\n" for s in range(20)))
    docs = []
    for r in range(rules):
        kind = r % 4
        if kind == 0:  # a field of its own (50 fields, 250 rules: 5 per field)
            on = f"[{{event: field_changed, field: field_{r % 50}}}]"
        elif kind == 1:
            on = f"[{{event: step_entered, step: s{r % 20}}}]"
        elif kind == 2:
            on = "[action_processed]"
        else:
            on = "[comment_added]"
        docs.append(f"kind: Rule\nname: rule_{r}\non: {on}\ntemplates: [t{r % 2}]\n"
                    f"when: {{all: [{{field: field_{r % 50}, gt: {r % 7}}}, {{field: priority, equals: high}}]}}\n"
                    f"do: [{{set_field: {{field: field_{(r + 1) % 50}, value: 1}}}}]\norder: {r}\n")
    (root / "rules.yaml").write_text("---\n".join(docs))


def part_two(seconds: float, rules: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        generate(root, rules)
        start = time.perf_counter()
        workspace = open_workspace(root)
        linked = time.perf_counter() - start
    start = time.perf_counter()
    index = RuleIndex(workspace)
    indexed = time.perf_counter() - start
    template, queue = workspace.templates["t0"], workspace.queues["q"]
    row = {key: None for key in CORE_KEYS} | {"id": 1, "version": 3, "number": "T0-1", "template": "t0",
                                              "queue": "q", "step": "s0", "status": "open", "priority": "high",
                                              "title": "x", "path": "[]"}
    order = Order(row, {f"field_{i}": i for i in range(50)} | {"field_4": 9}, {}, template, queue,
                  FieldCodec(template), 1)
    change = Change(order, None, workspace.fingerprint)
    change.events = [("updated", {"fields": {"field_4": 1}}, {"fields": {"field_4": 9}}, None)]
    every = [(c, c.rule) for c in index.by_name.values()]

    async def dispatch() -> int:
        triggers, names = triggers_of(change)
        candidates = index.candidates(triggers, order)
        facts = await order_facts(None, order, names, frozenset())  # type: ignore[arg-type] # no lookups needed
        return sum(1 for c in candidates if c.compiled.test(facts))

    async def scan() -> int:
        """The contrast: every rule's triggers and scope looked at for every event."""
        triggers, names = triggers_of(change)
        facts = await order_facts(None, order, names, frozenset())  # type: ignore[arg-type]
        fired = 0
        for compiled, rule in every:
            for trigger in rule.on:
                event = trigger if isinstance(trigger, str) else trigger.event
                detail = None if isinstance(trigger, str) else (trigger.field or trigger.step)
                if any(event == e and (detail is None or detail == d) for e, d in triggers):
                    if (not compiled.templates or "t0" in compiled.templates) and compiled.test(facts):
                        fired += 1
                    break
        return fired

    async def measure(function: Callable[[], Any]) -> tuple[float, int]:
        result = await function()
        count = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(100):
                await function()
            count += 100
        return (time.perf_counter() - start) / count, result

    per_event, matched = asyncio.run(measure(dispatch))
    per_scan, scanned = asyncio.run(measure(scan))
    assert matched == scanned
    candidates = len(index.candidates(triggers_of(change)[0], order))
    print(f"\nDispatch: {len(workspace.rules)} rules declared (linked in {linked:.2f} s, indexed in "
          f"{indexed * 1000:.1f} ms); one field change: {candidates} candidates, {matched} matching")
    print(f"    indexed dispatch   {per_event * 1e6:>10.1f} µs/event  (goal < 1 ms: "
          f"{'met' if per_event < 0.001 else 'NOT met'})")
    print(f"    scan of every rule {per_scan * 1e6:>10.1f} µs/event  ({per_scan / per_event:.0f}x the indexed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    parser.add_argument("--rules", type=int, default=1000)
    args = parser.parse_args()
    part_one(args.seconds)
    part_two(args.seconds, args.rules)


if __name__ == "__main__":
    main()
