namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The table entries of the IQ*/TQ* formats (IQ4_NL, IQ4_XS, IQ3_XXS, IQ3_S, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M,
/// TQ1_0, TQ2_0): one <c>add(new(...))</c> per type, as described at the top of TypeTraits.cs. Kept in its own file
/// so those formats land without touching the other entries.
/// </summary>
internal static class TypeTraitsIq
{
    /// <summary>Calls <paramref name="add"/> once per IQ/TQ type the engine supports (none yet).</summary>
    public static void Fill(Action<TypeTraits> add)
    {
        _ = add;
    }
}
