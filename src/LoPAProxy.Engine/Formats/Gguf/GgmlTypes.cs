using System.Buffers.Binary;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Engine.Formats.Gguf;

/// <summary>
/// Block sizes of ggml tensor types, and decoding of the ones a token-embedding table is stored in (F32, F16, BF16,
/// Q8_0, Q4_0). Layouts as ggml-common.h defines them: a Q8_0 block is an f16 scale d and 32 int8 q (x = d·q); a
/// Q4_0 block is d and 16 bytes whose low nibbles hold elements 0–15 and high nibbles 16–31 (x = d·(q − 8)).
/// </summary>
public static class GgmlTypes
{
    /// <summary>Values per block and bytes per block, or null for a type this project does not know.</summary>
    public static (int Values, int Bytes)? Block(GgmlType type) => type switch
    {
        GgmlType.F32 => (1, 4),
        GgmlType.F16 or GgmlType.BF16 => (1, 2),
        GgmlType.Q4_0 => (32, 18),
        GgmlType.Q4_1 => (32, 20),
        GgmlType.Q5_0 => (32, 22),
        GgmlType.Q5_1 => (32, 24),
        GgmlType.Q8_0 => (32, 34),
        GgmlType.Q8_1 => (32, 36),
        GgmlType.Q2_K => (256, 84),
        GgmlType.Q3_K => (256, 110),
        GgmlType.Q4_K => (256, 144),
        GgmlType.Q5_K => (256, 176),
        GgmlType.Q6_K => (256, 210),
        GgmlType.Q8_K => (256, 292),
        _ => null,
    };

    public static long? ByteSize(GgmlType type, long elements) =>
        Block(type) is { } b ? elements / b.Values * b.Bytes : null;

    public static void Dequantize(GgmlType type, ReadOnlySpan<byte> raw, Span<float> values, string file, string name)
    {
        switch (type)
        {
            case GgmlType.F32:
                FloatConvert.Decode(raw, DType.F32, values);
                break;
            case GgmlType.F16:
                FloatConvert.Decode(raw, DType.F16, values);
                break;
            case GgmlType.BF16:
                FloatConvert.Decode(raw, DType.BF16, values);
                break;
            case GgmlType.Q8_0:
                for (int b = 0; b < values.Length / 32; b++)
                {
                    ReadOnlySpan<byte> block = raw.Slice(b * 34, 34);
                    float d = FloatConvert.FromHalfBits(BinaryPrimitives.ReadUInt16LittleEndian(block));
                    for (int j = 0; j < 32; j++) values[b * 32 + j] = d * (sbyte)block[2 + j];
                }
                break;
            case GgmlType.Q4_0:
                for (int b = 0; b < values.Length / 32; b++)
                {
                    ReadOnlySpan<byte> block = raw.Slice(b * 18, 18);
                    float d = FloatConvert.FromHalfBits(BinaryPrimitives.ReadUInt16LittleEndian(block));
                    for (int j = 0; j < 16; j++)
                    {
                        values[b * 32 + j] = d * ((block[2 + j] & 0x0F) - 8);
                        values[b * 32 + j + 16] = d * ((block[2 + j] >> 4) - 8);
                    }
                }
                break;
            default:
                throw new TensorFileException(file,
                    $"'{name}' is stored as {type}; this reader decodes F32, F16, BF16, " +
                    "Q8_0 and Q4_0 (re-quantise the token embedding, or use a dialect that sends only the soft " +
                    "prompt)");
        }
    }
}
