using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace LfmSharp.Kernels.Arm64;

/// <summary>
/// A minimal xunit stand-in: every public [Fact] and every [Theory] row (InlineData/MemberData) of the compiled-in
/// kernel tests, one after another; skipped attributes (the AVX2 twins) are counted as skipped. Prints the ISA it
/// runs on and ends with "tests: N passed, N failed, N skipped"; exit code 1 on any failure.
/// </summary>
internal static class Runner
{
    private sealed class NoOutput : ITestOutputHelper
    {
        public void WriteLine(string message) { }
        public void WriteLine(string format, params object[] args) { }
    }

    public static int Main(string[] args)
    {
        Console.WriteLine($"{RuntimeInformation.ProcessArchitecture}: AdvSimd {AdvSimd.IsSupported}, Dp {Dp.IsSupported}, Vector128 accelerated {Vector128.IsHardwareAccelerated}");
        int passed = 0, failed = 0, skipped = 0;
        var types = typeof(Runner).Assembly.GetTypes().Where(t => t.IsClass && t.IsPublic && !t.IsAbstract).OrderBy(t => t.FullName, StringComparer.Ordinal);
        foreach (var type in types)
        {
            if (args.Length > 0 && !args.Any(a => type.FullName!.Contains(a, StringComparison.Ordinal)))
                continue;
            foreach (var m in type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            {
                var fact = m.GetCustomAttribute<FactAttribute>();
                if (fact is null)
                    continue;
                if (fact.Skip is not null)
                {
                    skipped++;
                    continue;
                }
                List<object?[]> rows;
                try
                {
                    rows = fact is TheoryAttribute
                        ? m.GetCustomAttributes<DataAttribute>().SelectMany(d => d.GetData(m)).Select(r => (object?[])r).ToList()
                        : [[]];
                }
                catch (Exception e)
                {
                    failed++;
                    Console.WriteLine($"FAIL {type.Name}.{m.Name} (test data): {Unwrap(e)}");
                    continue;
                }
                foreach (var row in rows)
                {
                    try
                    {
                        var ctor = type.GetConstructors()[0];
                        object instance = ctor.Invoke(ctor.GetParameters().Select(_ => (object?)new NoOutput()).ToArray());
                        if (m.Invoke(instance, row) is Task task)
                            task.GetAwaiter().GetResult();
                        (instance as IDisposable)?.Dispose();
                        passed++;
                    }
                    catch (Exception e)
                    {
                        failed++;
                        Console.WriteLine($"FAIL {type.Name}.{m.Name}({string.Join(", ", row)}): {Unwrap(e)}");
                    }
                }
            }
        }
        Console.WriteLine(skipped > 0 ? $"tests: {passed} passed, {failed} failed, {skipped} skipped" : $"tests: {passed} passed, {failed} failed");
        return failed == 0 ? 0 : 1;
    }

    private static string Unwrap(Exception e) => e is TargetInvocationException { InnerException: { } inner } ? inner.Message : e.Message;
}
