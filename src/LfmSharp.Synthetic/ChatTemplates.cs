namespace LfmSharp.Synthetic;

/// <summary>Chat templates (Jinja) embedded into synthetic models as <c>tokenizer.chat_template</c>.</summary>
internal static class ChatTemplates
{
    /// <summary>
    /// The fixtures' LFM2 (v1) style template (HOW-MADE §1.4): ChatML turns after a BOS, a system turn that also
    /// carries <c>List of tools: &lt;|tool_list_start|&gt;[...]&lt;|tool_list_end|&gt;</c>, tool results wrapped in
    /// tool-response tokens.
    /// </summary>
    public static string Lfm2 => LfmSharp.Tokenizers.SyntheticVocabulary.ChatTemplate;

    /// <summary>
    /// An LFM2.5 style template written for synthetic models from the layout in the spec (§6.1): a system turn only
    /// when there is a system message or tools; tools as <c>List of tools: [t1, t2]</c> (each <c>tojson</c>, no
    /// tool-list tokens); tool results as plain <c>tool</c> turns; thinking (text up to the last
    /// <c>&lt;/think&gt;</c>) stripped from every assistant turn except the last one unless
    /// <c>keep_past_thinking</c> is true; no <c>&lt;think&gt;</c> prefill in the generation prompt.
    /// </summary>
    public const string Lfm25 =
        """
        {{- bos_token -}}
        {%- set ns = namespace(system_prompt="", last_assistant=-1) -%}
        {%- if messages and messages[0]["role"] == "system" -%}
            {%- set ns.system_prompt = messages[0]["content"] -%}
            {%- set messages = messages[1:] -%}
        {%- endif -%}
        {%- if tools -%}
            {%- set ns.system_prompt = ns.system_prompt + ("\n" if ns.system_prompt else "") + "List of tools: [" -%}
            {%- for tool in tools -%}
                {%- set ns.system_prompt = ns.system_prompt + (tool | tojson) + (", " if not loop.last else "") -%}
            {%- endfor -%}
            {%- set ns.system_prompt = ns.system_prompt + "]" -%}
        {%- endif -%}
        {%- if ns.system_prompt -%}
            {{- "<|im_start|>system\n" + ns.system_prompt + "<|im_end|>\n" -}}
        {%- endif -%}
        {%- for message in messages -%}
            {%- if message["role"] == "assistant" -%}
                {%- set ns.last_assistant = loop.index0 -%}
            {%- endif -%}
        {%- endfor -%}
        {%- for message in messages -%}
            {{- "<|im_start|>" + message["role"] + "\n" -}}
            {%- set content = message["content"] -%}
            {%- if content is not string -%}
                {%- set content = content | tojson -%}
            {%- endif -%}
            {%- if message["role"] == "assistant" and loop.index0 != ns.last_assistant and not (keep_past_thinking is defined and keep_past_thinking) -%}
                {%- if "</think>" in content -%}
                    {%- set content = content.split("</think>")[-1] | trim -%}
                {%- endif -%}
            {%- endif -%}
            {{- content + "<|im_end|>\n" -}}
        {%- endfor -%}
        {%- if add_generation_prompt -%}
            {{- "<|im_start|>assistant\n" -}}
        {%- endif -%}

        """;

    public static string For(ChatTemplateStyle style) => style switch
    {
        ChatTemplateStyle.Lfm2 => Lfm2,
        ChatTemplateStyle.Lfm25 => Lfm25,
        _ => throw new ArgumentOutOfRangeException(nameof(style), style, null),
    };
}
