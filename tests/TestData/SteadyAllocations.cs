namespace LfmSharp.Tests;

/// <summary>
/// Bytes the calling thread allocates while running a steady-state workload. Code that allocates per call does so
/// in every window; the runtime itself (a tier-up, a one-off lock or pool initialisation) may allocate once in a
/// while, so the smallest of a few windows is the measure: a per-call allocation still shows, a one-off does not.
/// </summary>
internal static class SteadyAllocations
{
    public static long Measure(Action window, int windows = 3)
    {
        long least = long.MaxValue;
        for (int w = 0; w < windows && least != 0; w++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            window();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return least;
    }
}
