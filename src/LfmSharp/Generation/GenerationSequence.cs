using System.Collections;
using System.Diagnostics;
using System.Runtime.InteropServices;
using LfmSharp.Models;
using LfmSharp.Tokenizers;

namespace LfmSharp.Generation;

/// <summary>
/// One generation as a step machine, so that whoever owns the forward passes can drive it: ask it for its next input
/// (<see cref="TryGetInput"/>: a prefill chunk, or the one token it just chose), feed that input to
/// <see cref="State"/>, and hand it the logits after the input's last token (<see cref="Accept"/>), which runs the
/// per-token cycle and produces the events. Enumerating it runs it alone with its own forward passes; a
/// <see cref="DecodeBatcher"/> instead mixes the inputs of many sequences (prefill chunks and decode tokens) into one
/// pass. Scheduling lives entirely in this protocol: the event stream carries output only.
/// </summary>
/// <remarks>Not thread-safe; single use. Ends after the <see cref="Done"/> event, or when disposed.</remarks>
internal sealed class GenerationSequence : IEnumerable<GenerationEvent>, IGenerationSource, IDisposable
{
    private readonly LanguageModel _model;
    private readonly int[] _prompt;
    private readonly GenerationOptions _options;
    private readonly GenerationController? _hooks;
    private readonly CancellationToken _ct;
    private readonly Sampler _sampler;
    private readonly StreamingDetokenizer _detok;
    private readonly StopSequenceMatcher _stops;
    private readonly List<int> _history;       // prompt + generated, for the penalties
    private readonly int[] _token = new int[1]; // the decode input: the token just chosen
    private readonly int _cached;               // tokens already in the state at the start
    private readonly Stopwatch _clock = new();
    private int _fed;                           // prompt tokens fed so far
    private int _pending;                       // tokens handed out by TryGetInput and not yet accepted
    private int _checkpoint;                    // index of the next checkpoint in _options.Checkpoints not yet passed
    private int _deferredFrom = -1;             // start of the last prefill chunk whose checkpoints wait for the first token to be out
    private int _generated;
    private TimeSpan _prefill, _ttft;
    private bool _started, _finished, _enumerated;

    internal GenerationSequence(LanguageModel model, Lfm2State state, int[] prompt, GenerationOptions options,
        SamplingOptions sampling, GenerationController? hooks, CancellationToken ct)
    {
        _model = model;
        State = state;
        _prompt = prompt;
        _options = options;
        _hooks = hooks;
        _ct = ct;
        _cached = state.Position;
        _sampler = new Sampler(sampling, model.Config.VocabSize);
        _detok = new StreamingDetokenizer(model.Tokenizer);
        _stops = new StopSequenceMatcher(options.StopStrings);
        _history = new List<int>(prompt.Length + Math.Min(options.MaxTokens, state.ContextLength));
        _history.AddRange(prompt);
    }

    /// <summary>The sequence's model state; only the driver feeds it, with exactly what <see cref="TryGetInput"/> gave.</summary>
    public Lfm2State State { get; }

    /// <summary>True while prompt tokens remain to be fed.</summary>
    public bool IsPrefilling => _fed < _prompt.Length;

    /// <summary>True once the <see cref="Done"/> event has been produced (or the sequence was disposed).</summary>
    public bool IsFinished => _finished;

    /// <summary>Called once when the sequence ends (finished or disposed), e.g. to release its session.</summary>
    internal Action? Ended { get; set; }

    GenerationSequence IGenerationSource.Start() => this;

    /// <summary>
    /// The tokens to feed next, at most <paramref name="maxTokens"/> (≥ 1): a chunk of the prompt (cut at the next
    /// checkpoint) or the one token just chosen. False when the sequence is over; the last events (ending with
    /// <see cref="Done"/>) are then in <paramref name="events"/>. Cancellation is checked here, before every pass.
    /// </summary>
    public bool TryGetInput(int maxTokens, List<GenerationEvent> events, out ArraySegment<int> input)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 1);
        input = default;
        if (_finished)
            return false;
        if (_pending > 0)
            throw new InvalidOperationException("this sequence's last input has not been accepted yet");
        StoreDeferredCheckpoints();
        if (!_started)
        {
            _started = true;
            _clock.Start();
        }
        if (_ct.IsCancellationRequested)
        {
            Finish(FinishReason.Cancelled, events);
            return false;
        }
        if (IsPrefilling)
        {
            int n = Math.Min(maxTokens, _prompt.Length - _fed);
            // Checkpoints inside the chunk are captured by the pass (one at the chunk's end is the state itself), so
            // a checkpoint never cuts a chunk: cutting would cost this sequence a forward pass per checkpoint.
            int at = _cached + _fed;
            if (_hooks is not null)
            {
                var cps = _options.Checkpoints;
                for (int i = _checkpoint; cps is not null && i < cps.Count && cps[i] < at + n; i++)
                {
                    if (cps[i] > at)
                        State.CaptureAt(cps[i]);
                }
            }
            input = new ArraySegment<int>(_prompt, _fed, n);
        }
        else
        {
            input = new ArraySegment<int>(_token);
        }
        _pending = input.Count;
        return true;
    }

    /// <summary>
    /// Takes the logits after the last token of the input just fed (row of [vocab]; the sampler may change it in
    /// place) and runs the per-token cycle once the prompt is in; events go to <paramref name="events"/>.
    /// </summary>
    public void Accept(Span<float> logits, List<GenerationEvent> events)
    {
        if (_pending == 0)
            throw new InvalidOperationException("no input of this sequence was fed");
        if (logits.Length < _model.Config.VocabSize)
            throw new ArgumentException($"logits hold {logits.Length} floats; {_model.Config.VocabSize} needed.", nameof(logits));
        bool prefilling = IsPrefilling;
        int from = _cached + _fed;
        if (prefilling)
            _fed += _pending;
        _pending = 0;
        if (prefilling)
        {
            if (IsPrefilling)
            {
                StoreCheckpoints(from);
                return;
            }
            // The prompt is in. The last chunk's checkpoints are copied once the first token is out (the next
            // TryGetInput, or Finish): each copy is every KV row up to it plus fresh pages for them, milliseconds
            // the first token need not wait for. Nothing changes the state in between.
            _deferredFrom = from;
            _prefill = _clock.Elapsed;
            _hooks?.OnPrefillComplete(State);
        }
        Decide(logits[.._model.Config.VocabSize], events);
    }

    /// <summary>Every checkpoint the chunk that started at <paramref name="from"/> ran through, in order (the state holds
    /// _cached + _fed tokens and the chunk's captures), then the captures are dropped.</summary>
    private void StoreCheckpoints(int from)
    {
        var cps = _options.Checkpoints;
        while (cps is not null && _checkpoint < cps.Count && cps[_checkpoint] <= _cached + _fed)
        {
            int cp = cps[_checkpoint++];
            if (cp > from)
                _hooks?.OnCheckpoint(State, cp);
        }
        State.ClearCaptures();
    }

    /// <summary>The last prefill chunk's checkpoints, when they still wait (before the next pass changes the state).</summary>
    private void StoreDeferredCheckpoints()
    {
        if (_deferredFrom < 0)
            return;
        int from = _deferredFrom;
        _deferredFrom = -1;
        StoreCheckpoints(from);
    }

    /// <summary>The per-token cycle: choose, account, detokenize, decide whether to go on.</summary>
    private void Decide(Span<float> logits, List<GenerationEvent> events)
    {
        if (_generated >= _options.MaxTokens) { Finish(FinishReason.Length, events); return; }
        int forcedId = _hooks?.ForcedToken() ?? -1;
        int id;
        if (forcedId >= 0)
        {
            id = forcedId;
        }
        else
        {
            // Before any mask (a grammar sets −∞ on purpose): NaN/∞ from the model itself is a fault.
            NumericalFaultException.ThrowIfNotFinite(logits, _generated);
            _hooks?.ProcessLogits(logits);
            id = _sampler.Sample(logits, CollectionsMarshal.AsSpan(_history));
        }
        if (_generated == 0)
            _ttft = _clock.Elapsed;
        _generated++;
        _history.Add(id);
        _hooks?.OnToken(id, forcedId >= 0);

        if (_model.Tokenizer.Vocabulary.IsEndOfGeneration(id) && _options.StopAtEndOfGeneration && !(_hooks?.SuppressEndOfGeneration ?? false))
        {
            Finish(FinishReason.Stop, events);
            return;
        }
        // The logits now hold what the sampler saw (bias, penalties, mask applied in place).
        if (_options.Logprobs is int top)
            Emit(TokenLogprobs.Compute(logits, id, top), events);
        EmitText(_stops.Push(_detok.Append(id)), events);

        FinishReason? reason = _stops.Stopped ? FinishReason.Stop
            : _hooks?.StopReason is { } r ? r
            : _generated >= _options.MaxTokens || State.Position + 1 >= State.ContextLength ? FinishReason.Length
            : null;
        if (reason is { } why)
            Finish(why, events);
        else
            _token[0] = id;
    }

    private void Emit(TokenLogprobs lp, List<GenerationEvent> events)
    {
        if (_hooks is null)
            events.Add(lp);
        else
            _hooks.OnLogprobs(lp, events);
    }

    private void EmitText(string text, List<GenerationEvent> events)
    {
        if (text.Length == 0)
            return;
        if (_hooks is null)
            events.Add(new TextDelta(text));
        else
            _hooks.OnText(text, events);
    }

    private void Finish(FinishReason reason, List<GenerationEvent> events)
    {
        StoreDeferredCheckpoints();
        if (!_stops.Stopped)
            EmitText(_stops.Push(_detok.Flush()) + _stops.Flush(), events);
        var total = _clock.Elapsed;
        // Between passes (nothing pending), with the prompt in: the state is consistent and worth keeping.
        if (!IsPrefilling && _pending == 0)
            _hooks?.OnGenerationEnd(State);
        var done = new Done(reason, new GenerationUsage
        {
            PromptTokens = _cached + _prompt.Length,
            PrefilledTokens = _prompt.Length,
            CompletionTokens = _generated,
            PrefillTime = _prefill,
            DecodeTime = _generated > 0 ? total - _ttft : TimeSpan.Zero,
            TimeToFirstToken = _ttft,
        });
        events.Add(_hooks is null ? done : _hooks.OnFinish(done, events));
        End();
    }

    private void End()
    {
        if (_finished)
            return;
        _finished = true;
        _pending = 0;
        if (_deferredFrom >= 0)
        {
            // Abandoned before they were copied: the slot's state must not carry the captures into its next use.
            _deferredFrom = -1;
            State.ClearCaptures();
        }
        var ended = Ended;
        Ended = null;
        ended?.Invoke();
    }

    /// <summary>Abandons the sequence (its state is left wherever it got to).</summary>
    public void Dispose() => End();

    /// <summary>Runs the sequence alone: one forward pass per input, on the calling thread.</summary>
    public IEnumerator<GenerationEvent> GetEnumerator()
    {
        if (_enumerated)
            throw new InvalidOperationException("a generation runs once; start a new one");
        _enumerated = true;
        return RunAlone();
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private IEnumerator<GenerationEvent> RunAlone()
    {
        try
        {
            var logits = new float[_model.Config.VocabSize];   // [vocab] logits after the last token fed
            var events = new List<GenerationEvent>();
            while (true)
            {
                bool more = TryGetInput(int.MaxValue, events, out var input);
                if (more)
                {
                    _model.Model.Forward(input, State, logits);
                    Accept(logits, events);
                }
                for (int i = 0; i < events.Count; i++)
                    yield return events[i];
                events.Clear();
                if (!more)
                    yield break;
            }
        }
        finally
        {
            End();
        }
    }
}

/// <summary>
/// A generation that a batching driver can start on its own thread and then step (<see cref="GenerationSequence"/>);
/// enumerating the object instead runs it alone.
/// </summary>
internal interface IGenerationSource
{
    /// <summary>Starts the generation (e.g. takes its session and restores its cached prefix) without running a pass.</summary>
    GenerationSequence Start();
}
