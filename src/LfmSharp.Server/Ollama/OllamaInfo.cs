using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using LfmSharp.Server.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LfmSharp.Server.Ollama;

/// <summary>Ollama's model listing and description: <c>/api/tags</c>, <c>/api/show</c>, <c>/api/ps</c>.</summary>
internal static class OllamaInfo
{
    public static Task TagsAsync(HttpContext ctx, ServerContext server) => ListAsync(ctx, server, running: false);

    public static Task PsAsync(HttpContext ctx, ServerContext server) => ListAsync(ctx, server, running: true);

    private static Task ListAsync(HttpContext ctx, ServerContext server, bool running)
    {
        var (model, _) = server.Host.Ready();
        return HttpJson.WriteAsync(ctx, 200, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("models");
            foreach (string name in server.Host.Names)
            {
                w.WriteStartObject();
                w.WriteString("name", name);
                w.WriteString("model", name);
                w.WriteString("modified_at", Timestamp(server.Host.Created));
                w.WriteNumber("size", FileSize(server));
                w.WriteString("digest", Digest(server));
                Details(w, model);
                if (running)
                {
                    // Loaded for as long as the server runs.
                    w.WriteString("expires_at", Timestamp(DateTimeOffset.UtcNow.AddYears(1)));
                    w.WriteNumber("size_vram", 0);
                    w.WriteNumber("context_length", server.Options.ContextLength);
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }

    public static async Task ShowAsync(HttpContext ctx, ServerContext server)
    {
        var (model, _) = server.Host.Ready();
        string? name;
        using (var body = await HttpJson.ReadAsync(ctx).ConfigureAwait(false))
        {
            if (body.RootElement.ValueKind != JsonValueKind.Object)
                throw ApiException.WrongType("body", "a JSON object", body.RootElement.ValueKind);
            name = Json.String(body.RootElement, "model") ?? Json.String(body.RootElement, "name");
        }
        if (string.IsNullOrEmpty(name))
            throw ApiException.Missing("model");
        server.Host.ResolveModel(name);
        var sampling = model.DefaultSampling;
        await HttpJson.WriteAsync(ctx, 200, w =>
        {
            w.WriteStartObject();
            w.WriteString("license", model.Metadata.GetStringOrDefault("general.license") ?? "");
            w.WriteString("modelfile", $"FROM {server.Host.SourcePath ?? server.Host.ModelId}\n");
            w.WriteString("parameters", string.Create(CultureInfo.InvariantCulture,
                $"temperature {sampling.Temperature}\ntop_k {sampling.TopK}\ntop_p {sampling.TopP}\nrepeat_penalty {sampling.RepetitionPenalty}\nstop \"<|im_end|>\""));
            w.WriteString("template", model.Metadata.GetStringOrDefault("tokenizer.chat_template") ?? "");
            Details(w, model);
            w.WriteStartObject("model_info");
            w.WriteString("general.architecture", model.Metadata.GetStringOrDefault("general.architecture") ?? "lfm2");
            w.WriteString("general.name", model.Name);
            w.WriteNumber("lfm2.context_length", model.Config.ContextLength);
            w.WriteNumber("lfm2.embedding_length", model.Config.HiddenSize);
            w.WriteNumber("lfm2.block_count", model.Config.LayerCount);
            w.WriteNumber("lfm2.vocab_size", model.Config.VocabSize);
            w.WriteEndObject();
            w.WriteStartArray("capabilities");
            w.WriteStringValue("completion");
            w.WriteStringValue("tools");
            if (model.ChatTemplate.GenerationPromptOpensThinking || model.Tokenizer.Vocabulary.TryGetId("<think>", out _))
                w.WriteStringValue("thinking");
            w.WriteEndArray();
            w.WriteString("modified_at", Timestamp(server.Host.Created));
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static void Details(Utf8JsonWriter w, LanguageModel model)
    {
        w.WriteStartObject("details");
        w.WriteString("parent_model", "");
        w.WriteString("format", "gguf");
        w.WriteString("family", "lfm2");
        w.WriteStartArray("families");
        w.WriteStringValue("lfm2");
        w.WriteEndArray();
        w.WriteString("parameter_size", model.Metadata.GetStringOrDefault("general.size_label") ?? "");
        w.WriteString("quantization_level", QuantizationName(model.Metadata.GetInt64OrDefault("general.file_type", -1)));
        w.WriteEndObject();
    }

    /// <summary>llama.cpp's names for <c>general.file_type</c> (the common ones).</summary>
    private static string QuantizationName(long fileType) => fileType switch
    {
        0 => "F32",
        1 => "F16",
        7 => "Q8_0",
        10 => "Q2_K",
        12 => "Q3_K_M",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        _ => "unknown",
    };

    private static long FileSize(ServerContext server) =>
        server.Host.SourcePath is string path && File.Exists(path) ? new FileInfo(path).Length : 0;

    /// <summary>A stable id of the served file (path, size, time); hashing gigabytes for a listing would stall it.</summary>
    private static string Digest(ServerContext server)
    {
        string key = server.Host.SourcePath is string path && File.Exists(path)
            ? $"{path}|{new FileInfo(path).Length}|{File.GetLastWriteTimeUtc(path).Ticks}"
            : server.Host.ModelId;
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
    }

    private static string Timestamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);
}
