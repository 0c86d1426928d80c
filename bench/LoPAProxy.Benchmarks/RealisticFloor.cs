using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.IO.Hashing;
using System.Net;
using System.Text;
using LoPAProxy.Engine.Formats.Embeddings;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// The floor for `compare realistic`: the leanest code that puts the same rows on the same wire — given token ids
/// already made and Z already computed, each request reads its rows from the mapped table, converts them (vLLM:
/// bf16 through the engine's vectorised conversion, the CRC-32 its zip record needs, then base64; SGLang: shortest
/// round-trip decimal text), and POSTs one pooled buffer with its exact Content-Length over loopback. No JSON model,
/// no tokenising, no encoder, no zip headers (a few hundred bytes): what any implementation must at least pay.
/// </summary>
public sealed class RealisticFloor(HttpClient http, string backend, IEmbeddingTable table)
{
    /// <summary>One request of <paramref name="dialect"/>'s shape; the bytes sent.</summary>
    public Task<long> SendAsync(string dialect, float[] z, int[] ids, string text) => dialect switch
    {
        "vllm-completions" => PostAsync("/v1/completions", "{\"model\":\"m\",\"max_tokens\":1,\"prompt_embeds\":\"",
            Bf16Base64(z, ids), "\"}"),
        "sglang" => PostAsync("/generate", "{\"sampling_params\":{\"max_new_tokens\":1},\"input_embeds\":",
            DecimalRows(z, ids), "}"),
        "vllm-chat" => PostAsync("/v1/chat/completions", "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":" +
            "\"user\",\"content\":[{\"type\":\"prompt_embeds\",\"data\":\"", Bf16Base64(z, Array.Empty<int>()),
            "\"},{\"type\":\"text\",\"text\":" + System.Text.Json.JsonSerializer.Serialize(text) + "}]}]}"),
        _ => throw new ArgumentException(dialect),
    };

    private async Task<long> PostAsync(string path, string prefix, (byte[] Buffer, int Length) middle, string suffix)
    {
        try
        {
            using var content = new ThreePartContent(Encoding.UTF8.GetBytes(prefix), middle,
                Encoding.UTF8.GetBytes(suffix));
            using HttpResponseMessage response = await http.PostAsync(backend + path, content);
            await response.Content.ReadAsByteArrayAsync();
            response.EnsureSuccessStatusCode();
            return content.Headers.ContentLength ?? 0;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(middle.Buffer);
        }
    }

    /// <summary>[Z ; rows of ids] as bf16 (round to nearest even), its CRC-32, then base64 — two pooled buffers.
    /// </summary>
    private (byte[], int) Bf16Base64(float[] z, int[] ids)
    {
        int d = table.Dim;
        int rows = z.Length / d + ids.Length;
        byte[] raw = ArrayPool<byte>.Shared.Rent(rows * d * 2);
        float[] row = ArrayPool<float>.Shared.Rent(d);
        for (int r = 0; r < rows; r++)
        {
            Span<float> values = r * d < z.Length ? z.AsSpan(r * d, d) : row.AsSpan(0, d);
            if (r * d >= z.Length) table.Row(ids[r - z.Length / d], values);
            FloatConvert.Encode(values, DType.BF16, raw.AsSpan(r * d * 2, d * 2));
        }
        ArrayPool<float>.Shared.Return(row);
        uint crc = Crc32.HashToUInt32(raw.AsSpan(0, rows * d * 2));
        GC.KeepAlive(crc);
        byte[] text = ArrayPool<byte>.Shared.Rent(Base64.GetMaxEncodedToUtf8Length(rows * d * 2));
        Base64.EncodeToUtf8(raw.AsSpan(0, rows * d * 2), text, out _, out int written);
        ArrayPool<byte>.Shared.Return(raw);
        return (text, written);
    }

    /// <summary>[[…],[…]] of [Z ; rows of BOS + ids], each float in its shortest round-trip form.</summary>
    private (byte[], int) DecimalRows(float[] z, int[] ids)
    {
        int d = table.Dim;
        int rows = z.Length / d + ids.Length;
        byte[] text = ArrayPool<byte>.Shared.Rent(rows * (d * 16 + 3) + 2);
        float[] row = ArrayPool<float>.Shared.Rent(d);
        int at = 0;
        text[at++] = (byte)'[';
        for (int r = 0; r < rows; r++)
        {
            Span<float> values = r * d < z.Length ? z.AsSpan(r * d, d) : row.AsSpan(0, d);
            if (r * d >= z.Length) table.Row(ids[r - z.Length / d], values);
            text[at++] = r == 0 ? (byte)'[' : (byte)',';
            if (r > 0) text[at++] = (byte)'[';
            for (int c = 0; c < d; c++)
            {
                if (c > 0) text[at++] = (byte)',';
                values[c].TryFormat(text.AsSpan(at), out int n, default, CultureInfo.InvariantCulture);
                at += n;
            }
            text[at++] = (byte)']';
        }
        text[at++] = (byte)']';
        ArrayPool<float>.Shared.Return(row);
        return (text, at);
    }

    /// <summary>prefix + a pooled buffer's first bytes + suffix, its length known before sending.</summary>
    private sealed class ThreePartContent(byte[] prefix, (byte[] Buffer, int Length) middle, byte[] suffix)
        : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(prefix);
            await stream.WriteAsync(middle.Buffer.AsMemory(0, middle.Length));
            await stream.WriteAsync(suffix);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = prefix.Length + middle.Length + suffix.Length;
            return true;
        }
    }
}
