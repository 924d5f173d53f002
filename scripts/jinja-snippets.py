#!/usr/bin/python3
"""Renders tests/TestData/templates/snippets.txt (one template per line) with Python Jinja2 set up as
scripts/jinja-goldens.py sets it up, into snippets.json, for the engine's semantics test (filters, methods, tests,
operators and statements the chat-template corpus does not reach). Run: /usr/bin/python3 scripts/jinja-snippets.py
"""
import datetime, json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import importlib.util
spec = importlib.util.spec_from_file_location("goldens", os.path.join(os.path.dirname(os.path.abspath(__file__)), "jinja-goldens.py"))
goldens = importlib.util.module_from_spec(spec)
spec.loader.exec_module(goldens)

data = os.path.join(goldens.DATA)
env = goldens.environment(datetime.datetime(2026, 1, 15, 10, 30))
lines = open(os.path.join(data, "snippets.txt"), encoding="utf-8").read().split("\n")
# The last five lines are one template (whitespace control across lines).
items = [l for l in lines[:-6] if l]
items.append("\n".join(lines[-6:]))
cases = []
for src in items:
    case = {"template": src}
    try:
        case["output"] = env.from_string(src).render()
    except Exception as e:
        case["error"] = f"{type(e).__name__}: {e}"
    cases.append(case)
with open(os.path.join(data, "snippets.json"), "w", encoding="utf-8") as f:
    json.dump({"jinja2": goldens.jinja2.__version__, "cases": cases}, f, ensure_ascii=False, indent=1)
    f.write("\n")
print(len(cases), "snippets;", sum("error" in c for c in cases), "errors")
