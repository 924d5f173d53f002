using LfmSharp.Chat;
using LfmSharp.Server.Responses;

namespace LfmSharp.Server.Tests;

/// <summary>The bounded store behind <c>previous_response_id</c>.</summary>
public sealed class ResponseStoreTests
{
    [Fact]
    public void Oldest_responses_and_their_items_go_first_past_the_count()
    {
        var store = new ResponseStore(2);
        for (int i = 0; i < 3; i++)
            store.Add($"resp_{i}", [LfmChatMessage.User($"q{i}")], [($"msg_{i}", LfmChatMessage.Assistant($"a{i}"))]);
        Assert.False(store.TryGet("resp_0", out _));
        Assert.False(store.TryGetItem("msg_0", out _));
        Assert.True(store.TryGet("resp_2", out var kept));
        Assert.Equal("q2", Assert.Single(kept).Content);
        Assert.True(store.TryGetItem("msg_1", out var item));
        Assert.Equal("a1", item!.Content);
    }

    [Fact]
    public void Text_past_the_character_budget_evicts_the_oldest()
    {
        var store = new ResponseStore(100, maxChars: 10);
        store.Add("a", [LfmChatMessage.User("123456")], []);
        store.Add("b", [LfmChatMessage.User("123456")], []);
        Assert.False(store.TryGet("a", out _));
        Assert.True(store.TryGet("b", out _));
        // One conversation over the whole budget is not kept at all.
        store.Add("c", [LfmChatMessage.User(new string('x', 11))], []);
        Assert.False(store.TryGet("c", out _));
        Assert.True(store.TryGet("b", out _));
    }
}
