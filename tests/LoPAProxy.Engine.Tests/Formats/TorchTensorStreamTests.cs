using LoPAProxy.Engine.Formats.Torch;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Engine.Tests.Formats;

/// <summary>
/// The streamed base64 of torch.save equals the whole-file writer's, byte for byte, for every wire dtype and however
/// it is read — so forwarded tensors stay bit-identical (and vLLM's prefix cache still hits) while nothing is held
/// whole. The whole-file writer is checked against real PyTorch in <see cref="TorchFileTests"/>.
/// </summary>
public class TorchTensorStreamTests
{
    [Theory]
    [InlineData(1, 3, DType.F32)]
    [InlineData(7, 5, DType.F16)]
    [InlineData(130, 64, DType.BF16)]
    [InlineData(513, 96, DType.F32)]
    [InlineData(2000, 33, DType.BF16)]
    public void The_streamed_text_is_the_whole_files_base64(int rows, int dim, DType dtype)
    {
        var rng = new Random(rows * 31 + dim);
        float[] values = Enumerable.Range(0, rows * dim).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        string expected = Convert.ToBase64String(TorchFile.SaveTensor(Tensor.FromArray(values, rows, dim), dtype));
        int filled = 0;
        void Fill(int row, Span<float> destination)
        {
            filled++;
            values.AsSpan(row * dim, dim).CopyTo(destination);
        }
        foreach (int readSize in new[] { 1, 7, 4096, 1 << 20 })
        {
            using var stream = new TorchTensorStream(rows, dim, dtype, Fill);
            Assert.Equal(expected.Length, stream.Length);
            var text = new MemoryStream();
            var buffer = new byte[readSize];
            int n;
            while ((n = stream.Read(buffer, 0, buffer.Length)) > 0) text.Write(buffer, 0, n);
            Assert.Equal(expected, System.Text.Encoding.ASCII.GetString(text.ToArray()));
            Assert.Equal(stream.Length, stream.Position);
        }
        Assert.True(filled <= 4 * 2 * rows + 4, $"{filled} row fills for {rows} rows"); // a CRC pass and a copy pass
    }

    [Theory]
    [InlineData(130, 64, DType.BF16)]
    [InlineData(41, 4096, DType.F16)]
    [InlineData(9, 5, DType.F32)]
    public void Rows_whose_crc_is_known_are_not_converted_to_size_the_stream_and_the_text_is_the_same(int rows,
        int dim, DType dtype)
    {
        var rng = new Random(rows + dim);
        float[] values = Enumerable.Range(0, rows * dim).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        string expected = Convert.ToBase64String(TorchFile.SaveTensor(Tensor.FromArray(values, rows, dim), dtype));
        var known = new uint[rows];
        var bytes = new byte[dim * dtype.Size()];
        for (int r = 0; r < rows; r++)
        {
            FloatConvert.Encode(values.AsSpan(r * dim, dim), dtype, bytes);
            known[r] = System.IO.Hashing.Crc32.HashToUInt32(bytes);
        }
        int filled = 0;
        void Fill(int row, Span<float> destination)
        {
            filled++;
            values.AsSpan(row * dim, dim).CopyTo(destination);
        }
        // Every other row known, as when Z's rows are computed and the vocabulary's rows are cached.
        using var stream = new TorchTensorStream(rows, dim, dtype, Fill, row => row % 2 == 1 ? known[row] : null);
        Assert.Equal(rows - rows / 2, filled);
        var text = new MemoryStream();
        stream.CopyTo(text);
        Assert.Equal(expected, System.Text.Encoding.ASCII.GetString(text.ToArray()));
    }
}
