using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace LfmSharp.Extensions.AI;

/// <summary><c>model.AsChatClient()</c> and the DI registration.</summary>
public static class LfmSharpChatClientExtensions
{
    /// <summary>An <see cref="IChatClient"/> over <paramref name="model"/> (which the client does not own unless
    /// <see cref="LfmChatClientOptions.DisposeModel"/> is set).</summary>
    public static IChatClient AsChatClient(this LanguageModel model, LfmChatClientOptions? options = null) =>
        new LfmChatClient(model, options);

    /// <summary>
    /// Registers a singleton <see cref="LanguageModel"/> loaded from <paramref name="modelPath"/> on first use (and
    /// disposed with the container) and a singleton <see cref="IChatClient"/> over it. Wrap it with middleware by
    /// resolving it, or register your own <c>AddChatClient(sp =&gt; new LfmChatClient(...))</c>.
    /// </summary>
    public static IServiceCollection AddLfmSharpChatClient(this IServiceCollection services, string modelPath,
        LfmChatClientOptions? options = null, ModelLoadOptions? loadOptions = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        services.AddSingleton(_ => LanguageModel.Load(modelPath, loadOptions));
        return AddClient(services, sp => sp.GetRequiredService<LanguageModel>(), options);
    }

    /// <summary>Registers a singleton <see cref="IChatClient"/> over the model <paramref name="modelFactory"/> gives
    /// (the client does not dispose it unless <see cref="LfmChatClientOptions.DisposeModel"/> is set).</summary>
    public static IServiceCollection AddLfmSharpChatClient(this IServiceCollection services, Func<IServiceProvider, LanguageModel> modelFactory,
        LfmChatClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(modelFactory);
        return AddClient(services, modelFactory, options);
    }

    private static IServiceCollection AddClient(IServiceCollection services, Func<IServiceProvider, LanguageModel> modelFactory, LfmChatClientOptions? options)
    {
        options?.Validate();
        services.AddSingleton(sp => new LfmChatClient(modelFactory(sp), options));
        services.AddSingleton<IChatClient>(sp => sp.GetRequiredService<LfmChatClient>());
        return services;
    }
}
