using LfmSharp.Kernels;

namespace LfmSharp.Kernels.Tests;

public sealed class KernelThreadPoolTests
{
    private sealed class CountingWork(int n, int threads) : IParallelWork
    {
        public readonly int[] Hits = new int[n];
        public readonly int[] ThreadSeen = new int[threads];
        public void Execute(int start, int end, int thread)
        {
            Interlocked.Increment(ref ThreadSeen[thread]);
            for (int i = start; i < end; i++)
                Interlocked.Increment(ref Hits[i]);
        }
    }

    [Theory]
    [InlineData(1, 0, 1)]
    [InlineData(1, 1, 1)]
    [InlineData(2, 1, 1)]
    [InlineData(2, 1000, 1)]
    [InlineData(3, 997, 7)]
    [InlineData(4, 5, 100)]
    public void EveryIndexRunsExactlyOnce(int threads, int count, int grain)
    {
        using var pool = new KernelThreadPool(threads);
        for (int round = 0; round < 50; round++)
        {
            var work = new CountingWork(count, threads);
            pool.For(count, grain, work);
            Assert.All(work.Hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void ManyBackToBackRegionsComplete()
    {
        using var pool = new KernelThreadPool(3);
        var work = new CountingWork(64, 3);
        for (int round = 0; round < 5000; round++)
            pool.For(64, 1, work);
        Assert.All(work.Hits, h => Assert.Equal(5000, h));
    }

    [Fact]
    public void AlternatingRegionsNeverMixJobsOrRanges()
    {
        // Late workers must never run one region's job on another region's range.
        using var pool = new KernelThreadPool(4);
        var a = new CountingWork(37, 4);
        var b = new CountingWork(1000, 4);
        var c = new CountingWork(5, 4);
        for (int round = 0; round < 3000; round++)
        {
            pool.For(37, 1, a);
            pool.For(1000, 3, b);
            pool.For(5, 1, c);
        }
        Assert.All(a.Hits, h => Assert.Equal(3000, h));
        Assert.All(b.Hits, h => Assert.Equal(3000, h));
        Assert.All(c.Hits, h => Assert.Equal(3000, h));
    }

    [Fact]
    public async Task DisposeRightAfterARegionNeverHangs()
    {
        // A worker that finishes its last chunks while Dispose runs must still see Dispose (a lost wake-up used to
        // leave it waiting and Dispose joining it forever).
        var run = Task.Run(() =>
        {
            var work = new CountingWork(64, 3);
            for (int i = 0; i < 3000; i++)
            {
                using var pool = new KernelThreadPool(3);
                pool.For(64, 1, work);
            }
        });
        var finished = await Task.WhenAny(run, Task.Delay(TimeSpan.FromMinutes(2)));
        Assert.True(finished == run, "create/run/dispose cycles did not finish: a worker missed Dispose");
        await run;
    }

    [Fact]
    public void RegionsAfterIdleWorkersSleptStillComplete()
    {
        using var pool = new KernelThreadPool(2);
        var work = new CountingWork(16, 2);
        pool.For(16, 1, work);
        Thread.Sleep(50); // workers stop spinning and block
        pool.For(16, 1, work);
        Assert.All(work.Hits, h => Assert.Equal(2, h));
    }

    private sealed class ThrowingWork : IParallelWork
    {
        public void Execute(int start, int end, int thread)
        {
            if (start <= 10 && 10 < end)
                throw new InvalidOperationException("boom at 10");
        }
    }

    [Fact]
    public void ExceptionInAChunkIsRethrownAndPoolStaysUsable()
    {
        using var pool = new KernelThreadPool(2);
        var ex = Assert.Throws<AggregateException>(() => pool.For(100, 1, new ThrowingWork()));
        Assert.IsType<InvalidOperationException>(ex.InnerException);
        var work = new CountingWork(100, 2);
        pool.For(100, 1, work);
        Assert.All(work.Hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void UseAfterDisposeThrows()
    {
        var pool = new KernelThreadPool(2);
        pool.Dispose();
        Assert.Throws<ObjectDisposedException>(() => pool.For(10, 1, new CountingWork(10, 2)));
    }
}
