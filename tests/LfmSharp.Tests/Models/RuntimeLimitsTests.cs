using System.Diagnostics;
using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Models;

/// <summary>The shared checks of threads, context and model file, and the NaN-logit stop: clear one-line errors.</summary>
public sealed class RuntimeLimitsTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    [InlineData(100_000)]
    public void Thread_counts_outside_one_to_four_per_core_are_refused_in_one_line(int threads)
    {
        var e = Assert.Throws<ArgumentException>(() => RuntimeLimits.CheckThreads(threads));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains($"got {threads}", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => LanguageModel.Load(TestData.Model("tiny-f32"), new ModelLoadOptions { Threads = threads }));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(100_000_000)]
    [InlineData(int.MaxValue)]
    public void Contexts_that_cannot_exist_or_fit_are_refused_before_allocating(int ctx)
    {
        using var model = LanguageModel.Load(TestData.Model("tiny-f32"), new ModelLoadOptions { Threads = 1 });
        // Used to be ArgumentOutOfRange / OverflowException from the state's arrays.
        var e = Assert.ThrowsAny<ArgumentException>(() => model.CreateChatSession(ctx));
        Assert.DoesNotContain('\n', e.Message);
        Assert.ThrowsAny<ArgumentException>(() => RuntimeLimits.CheckContextLength(model.Config, ctx));
    }

    [Fact]
    public void A_context_past_the_trained_one_that_fits_is_allowed_with_a_note()
    {
        using var model = LanguageModel.Load(TestData.Model("tiny-f32"), new ModelLoadOptions { Threads = 1 });
        Assert.Null(RuntimeLimits.CheckContextLength(model.Config, model.Config.ContextLength));
        Assert.Contains("trained", RuntimeLimits.CheckContextLength(model.Config, model.Config.ContextLength * 2), StringComparison.Ordinal);
    }

    [Fact]
    public void A_directory_is_a_directory()
    {
        string dir = TestData.NewTempDir();
        var e = Assert.Throws<IOException>(() => LanguageModel.Load(dir));
        Assert.Contains("is a directory", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_fifo_is_refused_without_blocking()
    {
        if (OperatingSystem.IsWindows())
            return;
        string fifo = Path.Combine(TestData.NewTempDir(), "model.gguf");
        using (var mk = Process.Start("mkfifo", fifo))
            mk.WaitForExit();
        // Opening a FIFO blocks until a writer appears; the check must come before any open.
        var load = Task.Run(() => LanguageModel.Load(fifo));
        Assert.Same(load, await Task.WhenAny(load, Task.Delay(TimeSpan.FromSeconds(20))));
        var e = await Assert.ThrowsAsync<IOException>(() => load);
        Assert.Contains("not a regular file", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nan_weights_stop_generation_with_a_numerical_fault()
    {
        using var model = LanguageModel.Load(NanModel.Create(), new ModelLoadOptions { Threads = 1 });
        using var session = model.CreateChatSession(256);
        var e = Assert.Throws<NumericalFaultException>(() =>
            session.Complete([LfmChatMessage.User("hi")], new ChatRequestOptions { MaxTokens = 8 }).ToList());
        Assert.Equal(0, e.TokenIndex);
        Assert.Contains("non-finite", e.Message, StringComparison.Ordinal);
    }
}
