using LfmSharp.Generation;

namespace LfmSharp.Tests.Generation;

public class StopSequenceMatcherTests
{
    [Theory]
    [InlineData("Hello END world", "Hello ")]
    [InlineData("Hello EN", "Hello EN")]
    [InlineData("no stop here", "no stop here")]
    [InlineData("ENDING", "")]
    [InlineData("a STOP b END", "a ")]
    public void Output_never_contains_part_of_a_stop_string_at_any_chunking(string text, string expected)
    {
        // Feed every possible split into 1..3 chunks, the result must be the same.
        for (int i = 0; i <= text.Length; i++)
        {
            for (int j = i; j <= text.Length; j++)
            {
                var m = new StopSequenceMatcher(["END", "STOP"]);
                string got = m.Push(text[..i]) + m.Push(text[i..j]) + m.Push(text[j..]);
                got += m.Flush();
                Assert.Equal(expected, got);
                Assert.Equal(text.Contains("END", StringComparison.Ordinal) || text.Contains("STOP", StringComparison.Ordinal), m.Stopped);
            }
        }
    }

    [Fact]
    public void Held_text_is_not_emitted_until_it_is_known_not_to_be_a_stop()
    {
        var m = new StopSequenceMatcher(["<|stop|>"]);
        Assert.Equal("abc", m.Push("abc<|st"));
        Assert.Equal("<|stx", m.Push("x"));
        Assert.False(m.Stopped);
        Assert.Equal("", m.Push("<|stop|>tail"));
        Assert.True(m.Stopped);
        Assert.Equal("", m.Push("more"));
    }
}
