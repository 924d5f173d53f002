#!/usr/bin/python3
"""Renders the chat-template goldens: every template against every conversation, with Python Jinja2 set up the way
Hugging Face transformers sets it up for apply_chat_template (utils/chat_template_utils.py): an
ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, the loopcontrols extension and a `generation` block
(transformers' AssistantTracker: a call block that renders its body); `tojson` as json.dumps(ensure_ascii=False,
indent, separators, sort_keys); `raise_exception`; `strftime_now` (here with the FIXED date of conversations.json so
the goldens do not change from day to day).

Usage (from the repository root; needs Debian's python3-jinja2, nothing else):
    bash scripts/template-corpus.sh            # llama.cpp's models/templates into .cache/templates/llama.cpp
    /usr/bin/python3 scripts/jinja-goldens.py  # writes tests/TestData/templates/goldens/<template>.json

Templates: .cache/templates/llama.cpp/*.jinja (third party, not committed) and tests/TestData/templates/own/*.jinja
(ours). Each golden records the template's sha256, so a test can tell a different template version from a bug.
scripts/jinja-snippets.py renders tests/TestData/templates/snippets.txt (engine semantics) with the same environment.
"""
import datetime, hashlib, json, os, sys
import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "TestData", "templates")
SOURCES = [os.path.join(ROOT, ".cache", "templates", "llama.cpp"), os.path.join(DATA, "own")]


class Generation(Extension):
    """{% generation %}…{% endgeneration %}, as transformers' AssistantTracker parses it (a CallBlock)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def environment(now):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: now.strftime(fmt)
    return env


def main():
    spec = json.load(open(os.path.join(DATA, "conversations.json"), encoding="utf-8"))
    now = datetime.datetime.fromisoformat(spec["date"])
    env = environment(now)
    out_dir = os.path.join(DATA, "goldens")
    os.makedirs(out_dir, exist_ok=True)
    count = 0
    for folder in SOURCES:
        if not os.path.isdir(folder):
            sys.exit(f"{folder} is missing: run scripts/template-corpus.sh first")
        for file in sorted(os.listdir(folder)):
            if not file.endswith(".jinja"):
                continue
            source = open(os.path.join(folder, file), encoding="utf-8").read()
            name = file[:-len(".jinja")]
            golden = {"template": name, "jinja2": jinja2.__version__, "sha256": hashlib.sha256(source.encode("utf-8")).hexdigest(), "cases": []}
            try:
                template = env.from_string(source)
            except jinja2.TemplateError as e:
                golden["parse_error"] = f"{type(e).__name__}: {e}"
                template = None
            for conv in spec["conversations"] if template else []:
                case = {"conversation": conv["name"]}
                args = dict(conv.get("kwargs", {}))
                args.update(messages=conv["messages"], add_generation_prompt=conv["add_generation_prompt"],
                            bos_token=spec["bos_token"], eos_token=spec["eos_token"])
                if "tools" in conv:
                    args["tools"] = conv["tools"]
                try:
                    case["output"] = template.render(**args)
                except Exception as e:  # a template's raise_exception, or an error of the template itself
                    case["error"] = f"{type(e).__name__}: {e}"
                golden["cases"].append(case)
            with open(os.path.join(out_dir, name + ".json"), "w", encoding="utf-8") as f:
                json.dump(golden, f, ensure_ascii=False, indent=1)
                f.write("\n")
            count += 1
    print(f"{count} goldens in {os.path.relpath(out_dir, ROOT)}")


if __name__ == "__main__":
    main()
