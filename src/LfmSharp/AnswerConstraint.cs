using LfmSharp.Chat;
using LfmSharp.Constraints;

namespace LfmSharp;

/// <summary>
/// Structured output for one chat turn: a JSON / JSON-schema document, or a required tool call. The reasoning stays
/// free: the grammar applies from the first token after &lt;/think&gt; (or from the first token when the model does
/// not open a &lt;think&gt;), and the thinking is closed early enough that the document always fits the token budget.
/// </summary>
internal sealed class AnswerConstraint
{
    private enum Phase { BeforeStart, Thinking, Constrained }

    private readonly GrammarConstraint _constraint;
    private readonly int _thinkStartId, _thinkEndId;
    private Phase _phase;

    private readonly int[] _endIds;

    private AnswerConstraint(GrammarConstraint constraint, int thinkStartId, int thinkEndId, bool startsInReasoning, int[] endIds)
    {
        _endIds = endIds;
        _constraint = constraint;
        _thinkStartId = thinkStartId;
        _thinkEndId = thinkEndId;
        _phase = startsInReasoning ? Phase.Thinking : Phase.BeforeStart;
    }

    /// <summary>Null when the turn is free text with tool choice Auto/None.</summary>
    public static AnswerConstraint? Create(LanguageModel model, ChatRequestOptions o, bool startsInReasoning)
    {
        // Cached by schema: a server compiled it already, off the decode thread (see GrammarCache).
        Grammar? grammar = GrammarCache.For(o);
        if (grammar is null)
            return null;
        var vocab = model.Tokenizer.Vocabulary;
        int thinkStart = vocab.TryGetId(ChatOutputParser.ThinkStart, out int a) ? a : -1;
        int thinkEnd = vocab.TryGetId(ChatOutputParser.ThinkEnd, out int b) ? b : -1;
        // While thinking, only </think> may be a special token: a stray one (<|tool_call_end|>, <|im_start|>…) would
        // end up as text in content ahead of the document, which JSON clients then fail to parse.
        var banned = new List<int>(vocab.EndOfGenerationIds);
        for (int id = 0; id < vocab.Count; id++)
        {
            if (id != thinkEnd && vocab.GetTokenType(id) is Tokenizers.TokenType.Control or Tokenizers.TokenType.UserDefined && !vocab.IsEndOfGeneration(id))
                banned.Add(id);
        }
        return new AnswerConstraint(new GrammarConstraint(grammar, model.ConstraintVocabulary), thinkStart, thinkEnd, startsInReasoning && thinkEnd >= 0,
            [.. banned]);
    }

    /// <summary>True once the document is complete: only then may end-of-generation end the turn.</summary>
    public bool CanEnd => _phase == Phase.Constrained && _constraint.IsComplete;

    /// <summary>The reasoning must be closed now so that the document still fits in the remaining tokens.</summary>
    public bool MustCloseThinking(int generated, int maxTokens) =>
        _phase == Phase.Thinking && maxTokens - generated <= _constraint.MinBytesToComplete + 2;

    public void ProcessLogits(Span<float> logits, int generated, int maxTokens)
    {
        int remaining = Math.Max(1, maxTokens - generated);
        switch (_phase)
        {
            case Phase.BeforeStart:
            {
                // The first token may open the reasoning, or start the document right away.
                float think = _thinkStartId >= 0 ? logits[_thinkStartId] : float.NegativeInfinity;
                _constraint.ApplyMask(logits, remaining);
                if (_thinkStartId >= 0 && _thinkEndId >= 0 && remaining > _constraint.MinBytesToComplete + 3)
                    logits[_thinkStartId] = think;
                break;
            }
            case Phase.Constrained:
                _constraint.ApplyMask(logits, remaining);
                break;
            case Phase.Thinking:
                // The turn cannot end before the document exists, and no special token but </think> may appear.
                foreach (int id in _endIds)
                    logits[id] = float.NegativeInfinity;
                break;
        }
    }

    public void OnToken(int tokenId)
    {
        switch (_phase)
        {
            case Phase.BeforeStart when tokenId == _thinkStartId:
                _phase = Phase.Thinking;
                break;
            case Phase.BeforeStart:
                _phase = Phase.Constrained;
                _constraint.Accept(tokenId);
                break;
            case Phase.Thinking when tokenId == _thinkEndId:
                _phase = Phase.Constrained;
                break;
            case Phase.Constrained:
                _constraint.Accept(tokenId);
                break;
        }
    }
}
