using LfmSharp.Kernels;

namespace LfmSharp.Models;

/// <summary>
/// Activations of one forward step over up to <see cref="Tokens"/> rows: the residual stream and every block's
/// intermediate buffers, plus the matmul workspace. A state owns one for its own steps; the model owns one for
/// batched decode steps over several states.
/// </summary>
internal sealed class Lfm2Scratch
{
    public Lfm2Scratch(Lfm2Model model, int tokens)
    {
        var c = model.Config;
        int dim = c.HiddenSize, q = c.HeadCount * c.HeadSize, kv = c.KvHeadCounts.Max() * c.HeadSize, T = tokens;
        Tokens = tokens;
        X = Pinned(T * dim);                                   // [T, dim] residual stream
        Xb = Pinned(T * dim);                                  // [T, dim] normed input of a block
        Out = Pinned(T * dim);                                 // [T, dim] block output before the residual add
        // A block's own buffers are dead once it has written Out, so the conv block, the attention block and the
        // feed-forward share one region (a third of the scratch at the 1.2B shape's batch sizes):
        //   conv      [T, 3·dim] B | C | x,  [T, dim] B·x then C·conv,  [T, dim] conv output
        //   attention [T, heads·hd] q,  [T, kv·hd] k,  [T, kv·hd] v,  [T, heads·hd] attention output
        //   ffn       [T, ff] gate then silu(gate)·up,  [T, ff] up
        int perToken = Math.Max(5 * dim, Math.Max(2 * q + 2 * kv, 2 * c.FeedForwardSize));
        Work = Pinned(T * perToken);
        int maxCols = Math.Max(Math.Max(dim, q), c.FeedForwardSize);
        Workspace = new MatMulWorkspace(model.Pool, T, maxCols, model.Precision);
    }

    public int Tokens { get; }
    public readonly float[] X, Xb, Out, Work;
    public readonly MatMulWorkspace Workspace;

    private static float[] Pinned(int n) => GC.AllocateArray<float>(n, pinned: true);
}
