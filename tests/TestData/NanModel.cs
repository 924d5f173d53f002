using LfmSharp.Gguf;

namespace LfmSharp.Testing;

/// <summary>A copy of the tiny F32 fixture whose final norm weights are NaN, so every logit it produces is NaN.</summary>
internal static class NanModel
{
    public static string Create()
    {
        string path = Path.Combine(TestData.NewTempDir(), "lfm2-tiny-nan.gguf");
        File.Copy(TestData.Model("tiny-f32"), path);
        long offset;
        long bytes;
        using (var file = GgufFile.Open(path))
        {
            var norm = file.GetTensor("token_embd_norm.weight");
            Assert.Equal(LfmSharp.Kernels.Quant.GgmlType.F32, norm.Type);
            offset = file.DataOffset + norm.Offset;
            bytes = norm.ByteSize;
        }
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
        stream.Position = offset;
        var nan = BitConverter.GetBytes(float.NaN);
        for (long i = 0; i < bytes; i += 4)
            stream.Write(nan);
        return path;
    }
}
