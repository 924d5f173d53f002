using System.Runtime.InteropServices;
using Xunit.Abstractions;

namespace LfmSharp.Oracle.Tests.Quant;

// ggml's C signatures shared by the quant oracle tests; blittable arrays are pinned and passed as pointers, so
// native writes land in them.
[UnmanagedFunctionPointer(CallingConvention.Cdecl)]
internal delegate void DequantizeRowFn(byte[] x, [Out] float[] y, long k);
[UnmanagedFunctionPointer(CallingConvention.Cdecl)]
internal delegate void VecDotFn(int n, out float s, nuint bs, byte[] vx, nuint bx, byte[] vy, nuint by, int nrc);
[UnmanagedFunctionPointer(CallingConvention.Cdecl)]
internal delegate void InitFn();

/// <summary>The noavx ggml libraries that LLamaSharp.Backend.Cpu copies next to the tests.</summary>
internal sealed class NoAvxGgml
{
    private static readonly Lazy<NoAvxGgml?> s_instance = new(Load);
    private readonly nint _base, _cpu;

    private NoAvxGgml(nint @base, nint cpu) { _base = @base; _cpu = cpu; }

    public T Base<T>(string name) where T : Delegate => Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(_base, name));
    public T Cpu<T>(string name) where T : Delegate => Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(_cpu, name));

    public static bool TryLoad(ITestOutputHelper output, out NoAvxGgml ggml)
    {
        ggml = s_instance.Value!;
        if (ggml is not null)
            return true;
        // Only the x86-64 Linux/Windows packages carry a no-FMA build; elsewhere the C compiler may contract
        // a*b+c and the comparison would not be meaningful.
        output.WriteLine($"skipped: no noavx ggml build for {RuntimeInformation.RuntimeIdentifier}");
        return false;
    }

    private static NoAvxGgml? Load()
    {
        string? dir = null, prefix = "lib", ext = ".so";
        if (OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64)
            dir = "linux-x64";
        else if (OperatingSystem.IsWindows() && RuntimeInformation.ProcessArchitecture == Architecture.X64)
            (dir, prefix, ext) = ("win-x64", "", ".dll");
        if (dir is null)
            return null;
        string native = Path.Combine(AppContext.BaseDirectory, "runtimes", dir, "native", "noavx");
        nint b = NativeLibrary.Load(Path.Combine(native, $"{prefix}ggml-base{ext}"));
        nint c = NativeLibrary.Load(Path.Combine(native, $"{prefix}ggml-cpu{ext}"));
        // Fills ggml-cpu's f16 → f32 table; without it every f16 scale in the dot products reads as 0.
        var ggml = new NoAvxGgml(b, c);
        ggml.Cpu<InitFn>("ggml_cpu_init")();
        return ggml;
    }
}
