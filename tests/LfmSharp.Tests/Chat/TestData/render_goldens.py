#!/usr/bin/env python3
"""Renders template-goldens.json: the chat-template cases of ChatTemplateTests, rendered by real Jinja.

Run from this folder:  python3 render_goldens.py STOCK.jinja EXTENDED.jinja   (needs jinja2 >= 3.1; no other packages)

The two LFM2.5 templates are not redistributed here: extract them from the model GGUFs named below
(`tokenizer.chat_template`) and pass their paths.

The Jinja environment is the one Hugging Face transformers' apply_chat_template builds (sandboxed, trim_blocks,
lstrip_blocks, loopcontrols, tojson = json.dumps(ensure_ascii=False)); llama.cpp's Jinja engine is tested against
the same goldens. Templates:
  fixture         the template inside tests/TestData/fixtures/models/lfm2-tiny-f32.gguf (read from the file)
  fixture_ext     the same plus the render_tool_calls macro for assistant tool_calls
  lfm25_stock     lfm25-stock.jinja: the LFM2.5 GGUF template (spec section 6.1; the text path of the template in the
                  LFM2.5 GGUFs, transcribed from LFM2.5-VL-1.6B-Q8_0 whose text path is the same)
  lfm25_ext       lfm25-extended.jinja: stock plus render_tool_calls and <think> re-insertion from a `thinking` field,
                  as in the later LFM2.5 templates (LFM2.5-8B-A1B)
  lfm25_ascii     lfm25_stock with tojson(ensure_ascii=True), i.e. plain json.dumps
Tools and tool-call arguments are stored as raw JSON text so the C# side sees the exact source numbers (1e3, -0.0).
"""
import json, struct, os, sys
import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
GGUF = os.path.join(HERE, "..", "..", "..", "TestData", "fixtures", "models", "lfm2-tiny-f32.gguf")


def gguf_string(path, key):
    data = open(path, "rb").read()
    k = key.encode()
    i = data.find(struct.pack("<Q", len(k)) + k)
    assert i >= 0, key
    o = i + 8 + len(k)
    (vtype,) = struct.unpack_from("<I", data, o)
    assert vtype == 8, vtype  # string
    (n,) = struct.unpack_from("<Q", data, o + 4)
    return data[o + 12:o + 12 + n].decode("utf-8")


def env(ensure_ascii_default):
    e = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])

    def tojson(x, ensure_ascii=ensure_ascii_default, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(m):
        raise jinja2.exceptions.TemplateError(m)

    e.filters["tojson"] = tojson
    e.globals["raise_exception"] = raise_exception
    return e


HOOK = '    {{- "<|im_start|>" + message["role"] + "\\n" -}}\n'


def with_tool_calls(template):
    ext = open(sys.argv[2]).read()
    macros = ext[ext.index("{%- macro format_arg_value"):ext.index("{%- set keep_past_thinking")]
    assert HOOK in template
    hook = HOOK + ('    {%- if message["role"] == "assistant" and message.get("tool_calls") -%}\n'
                   '        {{- render_tool_calls(message["tool_calls"]) -}}\n'
                   '    {%- endif -%}\n')
    return template.replace("{{- bos_token -}}\n", "{{- bos_token -}}\n" + macros, 1).replace(HOOK, hook, 1)


WEATHER = '{"name": "get_weather", "description": "Current weather for a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}'
SEARCH = '{"type":"function","function":{"name":"search.web","description":"Search the web","parameters":{"type":"object","properties":{"query":{"type":"string"},"max_results":{"type":"integer","minimum":1,"maximum":1e2,"default":5}},"required":["query"]}}}'
NUMBERS = '{"name":"numbers","description":"Edge numbers","parameters":{"type":"object","properties":{"x":{"type":"number","minimum":-0.0,"maximum":1e3,"multipleOf":0.5,"examples":[1e-7,1E16,123456789012345678901234567890,2.50,1e15,0.0001,1.5e300,-3.25e-5,0,-0]}}}}'
UNICODE = '{"name":"translate","description":"Traduit « texte » → 日本語 😀; quotes \\" and \\\\ backslash\\n\\ttab \\u0001 \\u007f","parameters":{"type":"object","properties":{"text":{"type":"string","description":"Grüße"}},"required":[],"additionalProperties":false,"nested":{"a":[true,false,null,{}],"b":[]}}}'
DUPKEYS = '{"name":"dup","description":"first","description":"second"}'

CASES = [
    {"name": "system_and_user", "messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "hi"}],
     "add_generation_prompt": True},
    {"name": "user_only_no_prompt", "messages": [{"role": "user", "content": "Hello there"}], "add_generation_prompt": False},
    {"name": "empty_system_no_tools", "messages": [{"role": "system", "content": ""}, {"role": "user", "content": "hi"}],
     "add_generation_prompt": True},
    {"name": "empty_system_with_tools", "messages": [{"role": "system", "content": ""}, {"role": "user", "content": "weather?"}],
     "tools": [WEATHER], "add_generation_prompt": True},
    {"name": "tools_without_system", "messages": [{"role": "user", "content": "Weather in Paris?"}],
     "tools": [WEATHER, SEARCH], "add_generation_prompt": True},
    {"name": "tool_loop_text_history", "tools": [WEATHER], "add_generation_prompt": True, "messages": [
        {"role": "system", "content": "Use tools when needed."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "<think>\nI should call the tool.\n</think>\n\n<|tool_call_start|>[get_weather(city=\"Paris\")]<|tool_call_end|>Checking."},
        {"role": "tool", "content": "{\"temp_c\": 18, \"sky\": \"cloudy\"}"},
        {"role": "assistant", "content": "<think>\nGot it.\n</think>\n\nIt is 18 °C and cloudy."},
        {"role": "user", "content": "And tomorrow?"}]},
    {"name": "tool_loop_structured", "tools": [WEATHER, SEARCH], "add_generation_prompt": True, "messages": [
        {"role": "system", "content": "Use tools when needed."},
        {"role": "user", "content": "Weather in Paris and news?"},
        {"role": "assistant", "content": "", "thinking": "\nTwo calls.\n", "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}},
            {"id": "call_1", "type": "function", "function": {"name": "search.web", "arguments": '{"query": "Paris news", "max_results": 3, "fresh": true, "site": null, "ratio": 0.25, "big": 1e3, "tags": ["a", "b"], "filter": {"lang": "fr", "safe": false}}'}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "{\"temp_c\": 18}"},
        {"role": "tool", "tool_call_id": "call_1", "content": "[\"headline\"]"}]},
    {"name": "past_reasoning_field_dropped", "add_generation_prompt": True, "messages": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "thinking": "simple sum"},
        {"role": "user", "content": "3+3?"},
        {"role": "assistant", "content": "6", "thinking": "another sum"},
        {"role": "user", "content": "thanks"}]},
    {"name": "past_reasoning_field_kept", "keep_past_thinking": True, "add_generation_prompt": True, "messages": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "thinking": "simple sum"},
        {"role": "user", "content": "thanks"}]},
    {"name": "past_thinking_stripped", "add_generation_prompt": True, "messages": [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "<think>a</think>one</think>  \u3000\x1c answer one \n\t"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "no thinking here  "},
        {"role": "user", "content": "q3"},
        {"role": "assistant", "content": "<think>\nlast\n</think>\n\n  last answer  "}]},
    {"name": "past_thinking_kept", "keep_past_thinking": True, "add_generation_prompt": True, "messages": [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "<think>\nplan\n</think>\n\nanswer"},
        {"role": "user", "content": "q2"}]},
    {"name": "last_message_assistant", "add_generation_prompt": False, "messages": [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "<think>\nkeep me\n</think>\n\nfinal"}]},
    {"name": "later_system_message", "add_generation_prompt": True, "messages": [
        {"role": "user", "content": "a"},
        {"role": "system", "content": "mid-conversation system"},
        {"role": "user", "content": "b"}]},
    {"name": "number_formats", "tools": [NUMBERS], "add_generation_prompt": True, "messages": [
        {"role": "user", "content": "n"}]},
    {"name": "unicode_and_escapes", "tools": [UNICODE], "add_generation_prompt": True, "messages": [
        {"role": "system", "content": "Réponds en français. 🇫🇷"},
        {"role": "user", "content": "Übersetze: \"hi\"\\n"}]},
    {"name": "duplicate_keys", "tools": [DUPKEYS], "add_generation_prompt": True, "messages": [
        {"role": "user", "content": "d"}]},
    {"name": "tool_call_string_args", "tools": [WEATHER], "add_generation_prompt": False, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "done", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Zürich 日本", "unit": "celsius", "nested": {"k": [1, 2.5, "s", null, true]}, "empty": {}, "neg": -0.0}'}}]}]},
]


# Python as the oracle for the tool-call reader: each text is a Python expression (a list of calls, or one call);
# ast.literal_eval gives every keyword argument's value, json.dumps the JSON the C# side must produce.
CALLS = [
    r'''[get_weather(city="Paris")]''',
    r'''[get_weather(city='Paris', unit='celsius')]''',
    r'''[f(a=1, b=-2, c=3.5, d=-0.25, e=1e3, f=-1.5E-3, g=.5, h=5., i=1_000, j=0x1F, k=0o17, l=0b101, m=0)]''',
    r'''[f(t=True, u=False, n=None)]''',
    r'''[f(s="line\nbreak\ttab \\ back \" dq \' sq \u00e9 \U0001F600 \x41 \101 \q")]''',
    r'''[f(s='it\'s', d="say \"hi\"")]''',
    '[f(s="""triple "quoted" text""", r=' + "'''x'''" + ')]',
    r'''[f(s="a" "b" 'c')]''',
    r'''[f(l=[1, [2, [3, []]], "x"], t=(1, 2), one=(1,), empty=(), paren=(5), d={"k": {"n": [True, None]}, 'q': 1}, e={})]''',
    r'''[f(d={1: "int key", None: "none key", 2.5: "float key"})]''',
    r'''[a.b.c(x=1), pkg.tool_2(y="z")]''',
    '[f(), g(a=1,), h(\n  a = 1 ,\n  b = [ 1 , 2 , ] ,\n)]',
    r'''[f(s="日本語 😀 Grüße")]''',
    r'''f(x=1)''',
    r'''[f(big=123456789012345678901234567890, neg=-0, negf=-0.0)]''',
    r'''[f(dup={"a": 1, "b": 2, "a": 3})]''',
    r'''[f(s="cont\
inued")]''',
]


def call_json(text):
    import ast
    tree = ast.parse(text, mode="eval").body
    calls = tree.elts if isinstance(tree, ast.List) else [tree]
    out = []
    for c in calls:
        name = ast.unparse(c.func)
        args = {kw.arg: ast.literal_eval(kw.value) for kw in c.keywords}
        def fix(v):  # tuples become lists in JSON; non-string keys as json.dumps writes them
            if isinstance(v, tuple) or isinstance(v, list):
                return [fix(x) for x in v]
            if isinstance(v, dict):
                return {json.dumps(k) if not isinstance(k, str) else k: fix(x) for k, x in v.items()}
            return v
        out.append({"name": name, "arguments": json.dumps(fix(args), ensure_ascii=False)})
    return out


def float_cases():
    import random
    rng = random.Random(1234)
    out = []
    for _ in range(400):
        e = rng.randint(-30, 30)
        x = rng.random() * 10 ** e * rng.choice([1, -1])
        for text in ("%.17g" % x, "%e" % x, repr(x)):
            out.append([text, json.dumps(json.loads(text))])
    for text in ["1e16", "1e15", "1e-4", "1e-5", "0.0001", "123456789012345678.0", "1.0", "100", "-0", "0e10",
                 "5e-324", "1.7976931348623157e308", "2.5E+2", "9007199254740993", "0.1", "1e22", "1e21", "1234567.0"]:
        out.append([text, json.dumps(json.loads(text))])
    return out


def as_python(case):
    msgs = []
    for m in case["messages"]:
        m = dict(m)
        if "tool_calls" in m:
            m["tool_calls"] = [dict(tc, function=dict(tc["function"], arguments=json.loads(tc["function"]["arguments"])))
                               for tc in m["tool_calls"]]
        msgs.append(m)
    tools = [json.loads(t) for t in case.get("tools", [])] or None
    return msgs, tools


def main():
    fixture = gguf_string(GGUF, "tokenizer.chat_template")
    stock = open(sys.argv[1]).read()
    ext = open(sys.argv[2]).read()
    e, ea = env(False), env(True)
    templates = {
        "fixture": e.from_string(fixture),
        "fixture_ext": e.from_string(with_tool_calls(fixture)),
        "lfm25_stock": e.from_string(stock),
        "lfm25_ext": e.from_string(ext),
        "lfm25_ascii": ea.from_string(stock),
    }
    out = []
    for case in CASES:
        msgs, tools = as_python(case)
        structured = any("tool_calls" in m or "thinking" in m for m in case["messages"])
        expected = {}
        for name, t in templates.items():
            if structured and name in ("fixture", "lfm25_stock", "lfm25_ascii"):
                continue  # the stock templates ignore these fields; compared only against the extended ones
            expected[name] = t.render(messages=msgs, tools=tools, add_generation_prompt=case["add_generation_prompt"],
                                      keep_past_thinking=case.get("keep_past_thinking", False),
                                      bos_token="<|startoftext|>", eos_token="<|im_end|>")
        out.append(dict(case, expected=expected))
    with open(os.path.join(HERE, "template-goldens.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "render_goldens.py", "jinja2": jinja2.__version__, "cases": out,
                   "tool_calls": [{"text": t, "calls": call_json(t)} for t in CALLS],
                   "numbers": float_cases()}, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
