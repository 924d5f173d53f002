using System.Runtime.CompilerServices;

namespace LfmSharp.Constraints;

/// <summary>The whitespace an object or array allows in one gap (<see cref="WsMode"/>); Frame.Ws counts it.</summary>
internal static class Whitespace
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Is(int sym) => sym is ' ' or '\n' or '\t';

    public static StepResult Step(Grammar g, ref Frame f, WsMode mode, int sym)
    {
        switch (mode)
        {
            case WsMode.Space:
                if (sym == ' ' && f.Ws == 0)
                {
                    f.Ws = 1;
                    return StepResult.Consumed;
                }
                return StepResult.Reject;
            case WsMode.Flexible:
                if (f.Ws == 0)
                {
                    if (sym == ' ')
                        f.Ws = 1;
                    else if (sym == '\n')
                        f.Ws = 2;
                    else
                        return StepResult.Reject;
                    return StepResult.Consumed;
                }
                if (f.Ws >= 2 && sym is ' ' or '\t' && f.Ws - 2 < g.MaxIndent)
                {
                    f.Ws++;
                    return StepResult.Consumed;
                }
                return StepResult.Reject;
            default:
                return StepResult.Reject;
        }
    }
}
