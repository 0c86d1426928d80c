using System.Globalization;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Engine.Tests.Tensors;

public class TensorTests
{
    private static Tensor Iota(params int[] shape)
    {
        var t = Tensor.Zeros(shape);
        for (int i = 0; i < t.Count; i++) t.Span[i] = i;
        return t;
    }

    [Fact]
    public void Views_share_storage_and_index_correctly()
    {
        Tensor t = Iota(2, 3, 4);
        Tensor tr = t.Transpose(0, 2); // [4, 3, 2]
        Assert.Equal(new[] { 4, 3, 2 }, tr.Shape.ToArray());
        Assert.False(tr.IsContiguous);
        for (int a = 0; a < 2; a++)
        {
            for (int b = 0; b < 3; b++)
            {
                for (int c = 0; c < 4; c++)
                    Assert.Equal(t[a, b, c], tr[c, b, a]);
            }
        }

        Tensor s = t.Slice(2, 1, 2); // [2, 3, 2]
        Assert.Equal(t[1, 2, 2], s[1, 2, 1]);
        s[0, 0, 0] = -1;
        Assert.Equal(-1, t[0, 0, 1]);
        Tensor sel = t.Select(1, 2); // [2, 4]
        Assert.Equal(t[1, 2, 3], sel[1, 3]);
    }

    [Fact]
    public void Contiguous_copy_of_a_transposed_view_is_row_major()
    {
        Tensor t = Iota(3, 5);
        float[] packed = t.Transpose(0, 1).Contiguous().ToArray();
        for (int i = 0; i < 5; i++) for (int j = 0; j < 3; j++) Assert.Equal(j * 5 + i, packed[i * 3 + j]);
    }

    [Fact]
    public void Reshape_is_a_view_when_contiguous_and_infers_one_dimension()
    {
        Tensor t = Iota(4, 6);
        Tensor r = t.Reshape(2, -1, 3);
        Assert.Equal(new[] { 2, 4, 3 }, r.Shape.ToArray());
        Assert.Same(t.Storage, r.Storage);
        Tensor rt = t.Transpose(0, 1).Reshape(24);
        Assert.NotSame(t.Storage, rt.Storage);
        Assert.Equal(6f, rt.Span[1]);
        Assert.Throws<ArgumentException>(() => t.Reshape(5, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Slice(0, 3, 2));
    }

    [Fact]
    public void Size_one_and_empty_shapes()
    {
        Tensor one = Iota(1, 1, 1);
        Assert.True(one.Transpose(0, 2).IsContiguous);
        Tensor empty = Tensor.Zeros(0, 5);
        Assert.Equal(0, empty.Count);
        Assert.Empty(empty.Reshape(5, 0).ToArray());
    }

    [Fact]
    public void Half_and_bfloat16_conversion_match_pytorch_bit_for_bit()
    {
        var rng = new Random(7);
        var values = new List<float> { 0f, -0f, 1f, -1f, 65504f, 65520f, 1e-8f, 6e-8f, 3e38f, float.MaxValue, float.Epsilon,
            float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1.00390625f, 1.01171875f, 1.0078125f /* bf16 ties */ };
        for (int i = 0; i < 2000; i++) values.Add(BitConverter.Int32BitsToSingle(rng.Next()) * (rng.Next(2) == 0 ? 1 : -1));
        for (int i = 0; i < 500; i++) values.Add((float)(rng.NextDouble() * 200 - 100));
        string dir = TempDir.Create(), input = Path.Combine(dir, "in.bin");
        File.WriteAllBytes(input, values.SelectMany(BitConverter.GetBytes).ToArray());
        string output = PyTorch.Run("""
            import sys, torch
            raw = open(sys.argv[1], 'rb').read()
            x = torch.frombuffer(bytearray(raw), dtype=torch.float32)
            h = x.to(torch.float16).view(torch.int16).tolist()
            # scalar path (c10::BFloat16 round_to_nearest_even), one value at a time
            bf = [torch.tensor(v, dtype=torch.float32).to(torch.bfloat16).view(torch.int16).item() for v in x.tolist()]
            print(' '.join(str(v & 0xffff) for v in h))
            print(' '.join(str(v & 0xffff) for v in bf))
            """, input);
        string[] lines = output.Trim().Split('\n');
        ushort[] half = lines[0].Split(' ').Select(s => ushort.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        ushort[] bf16 = lines[1].Split(' ').Select(s => ushort.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        for (int i = 0; i < values.Count; i++)
        {
            float v = values[i];
            ushort h = FloatConvert.ToHalfBits(v), b = FloatConvert.ToBFloat16Bits(v);
            if (float.IsNaN(v))
            {
                Assert.True(float.IsNaN(FloatConvert.FromHalfBits(h)) && float.IsNaN(FloatConvert.FromBFloat16Bits(b)), "NaN must stay NaN");
                continue;
            }
            Assert.True(half[i] == h, $"fp16 of {v:R}: torch {half[i]:X4}, ours {h:X4}");
            Assert.True(bf16[i] == b, $"bf16 of {v:R}: torch {bf16[i]:X4}, ours {b:X4}");
        }
        // The vectorised whole-span path (8 or 4 at a time, then a scalar tail: the count is not a multiple of 8).
        var encoded = new byte[values.Count * 2];
        FloatConvert.Encode(values.ToArray(), DType.BF16, encoded);
        for (int i = 0; i < values.Count; i++)
        {
            ushort b = BitConverter.ToUInt16(encoded, i * 2);
            if (float.IsNaN(values[i])) Assert.Equal(0x7FC0, b);
            else Assert.True(bf16[i] == b, $"bf16 (span) of {values[i]:R}: torch {bf16[i]:X4}, ours {b:X4}");
        }
    }

    [Fact]
    public void Encode_decode_round_trips_every_float_dtype()
    {
        float[] v = { 1.5f, -2.25f, float.PositiveInfinity, float.NegativeInfinity, 0f, 1024f };
        foreach (DType t in new[] { DType.F32, DType.F16, DType.BF16 })
        {
            var bytes = new byte[v.Length * t.Size()];
            FloatConvert.Encode(v, t, bytes);
            var back = new float[v.Length];
            FloatConvert.Decode(bytes, t, back);
            Assert.Equal(v, back);
        }
        var nan = new byte[2];
        FloatConvert.Encode(new[] { float.NaN }, DType.BF16, nan);
        var n = new float[1];
        FloatConvert.Decode(nan, DType.BF16, n);
        Assert.True(float.IsNaN(n[0]));
    }
}
