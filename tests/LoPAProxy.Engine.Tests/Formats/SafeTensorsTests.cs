using System.Buffers.Binary;
using System.Text;
using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.SafeTensors;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Engine.Tests.Formats;

public class SafeTensorsTests
{
    internal static byte[] Sample()
    {
        var rng = new Random(11);
        return new SafeTensorsWriter()
            .Metadata("format", "pt").Metadata("peft_type", "LOPA")
            .Add("prompt_embeddings", Tensor.FromArray(Rand.Floats(rng, 10 * 6), 10, 6))
            .Add("u.weight", Tensor.FromArray(Rand.Floats(rng, 12), 3, 4), DType.BF16)
            .Add("v.bias", Tensor.FromArray(Rand.Floats(rng, 5), 5), DType.F16)
            .AddRaw("ids", DType.I64, new long[] { 2 }, BitConverter.GetBytes(7L).Concat(BitConverter.GetBytes(-1L)).ToArray())
            .AddRaw("mask", DType.I32, new long[] { 1, 1 }, BitConverter.GetBytes(1))
            .ToArray();
    }

    [Fact]
    public void Round_trip_every_dtype_with_metadata_through_a_memory_map()
    {
        var rng = new Random(11);
        float[] z = Rand.Floats(rng, 60), u = Rand.Floats(rng, 12), v = Rand.Floats(rng, 5);
        string path = Path.Combine(TempDir.Create(), "adapter_model.safetensors");
        File.WriteAllBytes(path, Sample());
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal("LOPA", file.Metadata["peft_type"]);
        Assert.Equal(z, file.ReadFloat32("prompt_embeddings").ToArray());
        Assert.Equal(new[] { 10, 6 }, file.ReadFloat32("prompt_embeddings").Shape.ToArray());
        float[] bf = new float[12], half = new float[5];
        for (int i = 0; i < 12; i++) bf[i] = FloatConvert.FromBFloat16Bits(FloatConvert.ToBFloat16Bits(u[i]));
        for (int i = 0; i < 5; i++) half[i] = FloatConvert.FromHalfBits(FloatConvert.ToHalfBits(v[i]));
        Assert.Equal(bf, file.ReadFloat32("u.weight").ToArray());
        Assert.Equal(half, file.ReadFloat32("v.bias").ToArray());
        Assert.Equal(new float[] { 7, -1 }, file.ReadFloat32("ids").ToArray());
        Assert.Equal(DType.I32, file.Info("mask").DType);
        Assert.Equal(5, file.Tensors.Count);
        Assert.Throws<TensorFileException>(() => file.Info("missing"));
    }

    [Fact]
    public void Writer_bytes_are_deterministic_and_header_is_8_byte_aligned()
    {
        byte[] a = Sample(), b = Sample();
        Assert.Equal(a, b);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(a);
        Assert.Equal(0UL, n % 8);
        string header = Encoding.UTF8.GetString(a, 8, (int)n);
        Assert.StartsWith("{\"__metadata__\":{\"format\":\"pt\",\"peft_type\":\"LOPA\"},\"ids\":", header);
    }

    [Fact]
    public void Files_written_by_an_independent_python_reader_agree()
    {
        // No safetensors package in this registry: check the bytes with a 10-line reader of the published spec.
        string path = Path.Combine(TempDir.Create(), "x.safetensors");
        File.WriteAllBytes(path, Sample());
        string output = PyTorch.Run("""
            import sys, json, struct, torch
            raw = open(sys.argv[1], 'rb').read()
            n = struct.unpack('<Q', raw[:8])[0]
            h = json.loads(raw[8:8+n]); data = raw[8+n:]
            dt = {'F32': torch.float32, 'BF16': torch.bfloat16, 'F16': torch.float16, 'I64': torch.int64, 'I32': torch.int32}
            for k in sorted(x for x in h if x != '__metadata__'):
                b, e = h[k]['data_offsets']
                t = torch.frombuffer(bytearray(data[b:e]), dtype=dt[h[k]['dtype']]).reshape(h[k]['shape'])
                print(k, list(t.shape), repr(float(t.float().sum())))
            """, path);
        using var file = SafeTensorsFile.FromBytes(Sample(), "x");
        foreach (string line in output.Trim().Split('\n'))
        {
            string[] parts = line.Split(' ', 2);
            Tensor t = file.ReadFloat32(parts[0]);
            Assert.Contains($"[{string.Join(", ", t.Shape.ToArray())}]", parts[1]);
            double theirs = double.Parse(parts[1][(parts[1].LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(theirs, t.ToArray().Sum(x => (double)x), 4);
        }
    }

    private static byte[] WithHeader(string json, int dataBytes)
    {
        byte[] h = Encoding.UTF8.GetBytes(json);
        var file = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)h.Length);
        h.CopyTo(file, 8);
        return file;
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "span 4")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4, "outside the data section")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 8, "overlaps")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "hole")]
    [InlineData("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "unsupported dtype")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "non-negative integer")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, "overflows")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, "unknown field")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "lacks")]
    [InlineData("[1,2]", 0, "not a JSON object")]
    [InlineData("{\"a\":", 0, "not valid JSON")]
    [InlineData("{\"__metadata__\":{\"k\":1}}", 0, "not a string")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6, "cover 4")]
    public void Hostile_headers_raise_typed_errors_naming_the_problem(string json, int dataBytes, string problem)
    {
        var ex = Assert.Throws<TensorFileException>(() => SafeTensorsFile.FromBytes(WithHeader(json, dataBytes), "bad.safetensors"));
        Assert.Contains(problem, ex.Message);
        Assert.StartsWith("bad.safetensors: ", ex.Message);
    }

    [Fact]
    public void Header_length_beyond_the_file_or_over_100MB_is_rejected_before_reading_it()
    {
        var file = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(file, 9);
        Assert.Contains("runs past the end", Assert.Throws<TensorFileException>(() => SafeTensorsFile.FromBytes(file, "f")).Message);
        BinaryPrimitives.WriteUInt64LittleEndian(file, 200_000_000);
        Assert.Contains("limit", Assert.Throws<TensorFileException>(() => SafeTensorsFile.FromBytes(file, "f")).Message);
        BinaryPrimitives.WriteUInt64LittleEndian(file, ulong.MaxValue);
        Assert.Throws<TensorFileException>(() => SafeTensorsFile.FromBytes(file, "f"));
        Assert.Throws<TensorFileException>(() => SafeTensorsFile.FromBytes(new byte[3], "f"));
        // A file of another kind (here JSON text, as a mistaken config upload) says so, not "header length 7e18".
        Assert.Contains("not a safetensors file", Assert.Throws<TensorFileException>(() => SafeTensorsFile.FromBytes(
            System.Text.Encoding.UTF8.GetBytes("{\"peft_type\": \"LOPA\", \"num_virtual_tokens\": 10}"), "f")).Message);
        string dup = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        // A tensor named twice is a duplicate JSON key, refused by the strict parse and named whole.
        Assert.Contains("duplicate key", Assert.Throws<TensorFileException>(() => SafeTensorsFile.FromBytes(
            WithHeader(dup, 4), "f")).Message);
    }
}
