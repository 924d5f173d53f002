using System.Diagnostics.CodeAnalysis;

// Both helpers validate on behalf of a public entry point, so the exception names what the user passed: the
// ModelLoadOptions.ChatTemplate option, and the chat request's messages list.
[assembly: SuppressMessage("Usage", "CA2208:Instantiate argument exceptions correctly", Scope = "member",
    Target = "~M:LfmSharp.LanguageModel.OverrideTemplate(System.String,System.String,System.String)~LfmSharp.Chat.ChatTemplate",
    Justification = "Names the ModelLoadOptions.ChatTemplate option the caller set.")]
[assembly: SuppressMessage("Usage", "CA2208:Instantiate argument exceptions correctly", Scope = "type",
    Target = "~T:LfmSharp.Chat.JinjaChatTemplate", Justification = "Names the messages list the caller passed.")]

// The template evaluator's lookups (GetAttr, GetItem, Iterate, CompareOnce) are the instance API that filters, tests and
// methods call through the evaluator they are handed (ev.Iterate(v)); whether one reads evaluator state today is
// incidental, and making one static cascades into the next and into every filter's call site.
[assembly: SuppressMessage("Performance", "CA1822:Mark members as static", Scope = "type",
    Target = "~T:LfmSharp.Templating.Evaluator", Justification = "Instance API of the evaluator, called through ev.")]
