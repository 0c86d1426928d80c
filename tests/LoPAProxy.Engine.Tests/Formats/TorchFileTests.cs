using System.Globalization;
using System.Text;
using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.Torch;
using LoPAProxy.Engine.Formats.Zip;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Engine.Tests.Formats;

public class TorchFileTests
{
    [Fact]
    public void PyTorch_loads_every_file_the_writer_produces_with_weights_only_bit_for_bit()
    {
        var rng = new Random(21);
        string dir = TempDir.Create();
        var cases = new List<(string File, DType Type, float[] Values, int[] Shape)>();
        int n = 0;
        foreach (DType type in new[] { DType.F32, DType.F16, DType.BF16 })
        {
            foreach (int[] shape in new[] { new[] { 10, 6 }, new[] { 1, 10, 288 }, new[] { 7 }, new[] { 1, 1 },
                new[] { 3, 300, 2 }, new[] { 2, 1, 1, 3 } })
            {
                float[] v = Rand.Floats(rng, ShapeMath.Count(shape), 3f);
                if (v.Length > 3) { v[0] = float.PositiveInfinity; v[1] = float.NegativeInfinity; v[2] = -0f; }
                string file = Path.Combine(dir, $"t{n++}.pt");
                File.WriteAllBytes(file, TorchFile.SaveTensor(Tensor.FromArray(v, shape), type));
                cases.Add((file, type, v, shape));
            }
        }

        string output = PyTorch.Run("""
            import sys, torch
            ints = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}
            for f in sys.argv[1:]:
                t = torch.load(f, weights_only=True, map_location='cpu')
                bits = t.contiguous().view(ints[t.dtype]).flatten().tolist()
                print(str(t.dtype), list(t.shape), t.is_contiguous(), ' '.join(str(b & 0xffffffff) for b in bits))
            """, cases.Select(c => c.File).ToArray());
        string[] lines = output.Trim().Split('\n');
        Assert.Equal(cases.Count, lines.Length);
        for (int i = 0; i < cases.Count; i++)
        {
            var (_, type, values, shape) = cases[i];
            string[] parts = lines[i].Split(' ', 2 + shape.Length + 1);
            Assert.Equal(type switch { DType.F32 => "torch.float32", DType.F16 => "torch.float16", _ => "torch.bfloat16" }, parts[0]);
            Assert.StartsWith($"[{string.Join(", ", shape)}] True ", lines[i][(parts[0].Length + 1)..]);
            uint[] theirs = lines[i][(lines[i].IndexOf("True ", StringComparison.Ordinal) + 5)..].Split(' ').Select(s => uint.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            var ours = new byte[values.Length * type.Size()];
            FloatConvert.Encode(values, type, ours);
            for (int j = 0; j < values.Length; j++)
            {
                uint expected = type == DType.F32 ? BitConverter.ToUInt32(ours, j * 4) : BitConverter.ToUInt16(ours, j * 2);
                Assert.Equal(expected, theirs[j] & (type == DType.F32 ? 0xFFFFFFFF : 0xFFFF));
            }
        }
    }

    [Fact]
    public void Files_written_by_torch_save_load_identically()
    {
        string dir = TempDir.Create();
        PyTorch.Run("""
            import sys, os, torch
            d = sys.argv[1]
            g = torch.Generator().manual_seed(0)
            base = torch.randn(4, 5, generator=g)
            cases = {'f32': base, 'f16': base.half(), 'bf16': base.bfloat16(), 'f64': base.double(),
                     'transposed': base.t(), 'sliced': base[1:3, 2:], 'scalar': torch.tensor(2.5), 'empty': torch.zeros(0, 3),
                     'int64': torch.arange(6).reshape(2, 3), 'param': torch.nn.Parameter(base[:2])}
            for k, t in cases.items():
                torch.save(t, os.path.join(d, k + '.pt'))
                open(os.path.join(d, k + '.txt'), 'w').write(' '.join(repr(float(x)) for x in t.detach().double().flatten().tolist()) + '\n' + ' '.join(map(str, t.shape)))
            lin = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
            torch.save(lin.state_dict(), os.path.join(d, 'state.pt'))
            open(os.path.join(d, 'state.txt'), 'w').write('\n'.join(k + ' ' + ' '.join(repr(float(x)) for x in v.flatten().tolist()) for k, v in lin.state_dict().items()))
            torch.save({'prompt_embeddings': base.bfloat16()}, os.path.join(d, 'peft.pt'))
            """, dir);
        foreach (string name in new[] { "f32", "f16", "bf16", "f64", "transposed", "sliced", "scalar", "empty", "int64", "param" })
        {
            TorchTensor t = TorchFile.LoadTensor(Path.Combine(dir, name + ".pt"));
            string[] txt = File.ReadAllText(Path.Combine(dir, name + ".txt")).Split('\n');
            float[] expected = txt[0].Length == 0 ? Array.Empty<float>() : txt[0].Split(' ').Select(s => (float)double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            int[] shape = txt[1].Length == 0 ? Array.Empty<int>() : txt[1].Split(' ').Select(int.Parse).ToArray();
            Assert.Equal(shape, t.Values.Shape.ToArray());
            Assert.Equal(expected, t.Values.ToArray());
        }
        Assert.Equal(DType.BF16, TorchFile.LoadTensor(Path.Combine(dir, "bf16.pt")).StoredAs);
        var state = TorchFile.LoadStateDict(File.ReadAllBytes(Path.Combine(dir, "state.pt")), "state.pt");
        string[] lines = File.ReadAllText(Path.Combine(dir, "state.txt")).Split('\n');
        Assert.Equal(lines.Select(l => l.Split(' ')[0]), state.Select(kv => kv.Key));
        for (int i = 0; i < lines.Length; i++)
            Assert.Equal(lines[i].Split(' ').Skip(1).Select(s => (float)double.Parse(s, CultureInfo.InvariantCulture)), state[i].Value.Values.ToArray());
        var peft = TorchFile.LoadStateDict(File.ReadAllBytes(Path.Combine(dir, "peft.pt")), "peft.pt");
        Assert.Equal("prompt_embeddings", peft[0].Key);
        Assert.Equal(new[] { 4, 5 }, peft[0].Value.Values.Shape.ToArray());
    }

    internal static byte[] Archive(string pickle, params (string Name, byte[] Data)[] extra)
    {
        var zip = new StoredZipWriter();
        zip.Add("archive/data.pkl", Encoding.Latin1.GetBytes(pickle));
        foreach (var (name, data) in extra) zip.Add(name, data);
        if (!extra.Any(e => e.Name.EndsWith("version", StringComparison.Ordinal))) zip.Add("archive/version", "3\n"u8);
        return zip.ToArray();
    }

    [Theory]
    [InlineData(@"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.", "disallowed global 'os.system'")]
    [InlineData(@"\x80\x02cbuiltins\neval\n.", "disallowed global 'builtins.eval'")]
    [InlineData(@"\x80\x02ctorch\nFloatStorage\n)R.", "cannot be called")]
    [InlineData(@"\x80\x02(X\x01\x00\x00\x00a\x81.", "not allowed")]
    [InlineData(@"\x80\x02X\xff\xff\xff\x7fabc.", "runs past the end")]
    [InlineData(@"\x80\x02K\x01K\x02", "without STOP")]
    [InlineData(@"\x80\x02h\x05.", "never stored")]
    [InlineData(@"\x80\x02t.", "no MARK")]
    [InlineData(@"\x80\x02K\x01K\x02.", "STOP with 2 values")]
    [InlineData(@"\x80\x02}K\x01s.", "underflow")]
    [InlineData(@"\x80\x02\x8a\x09\x01\x01\x01\x01\x01\x01\x01\x01\x01.", "too large")]
    public void Hostile_pickles_raise_typed_errors_and_never_run_code(string pickle, string problem)
    {
        var ex = Assert.Throws<TensorFileException>(() => TorchFile.LoadTensor(Archive(Unescape(pickle)), "evil.pt"));
        Assert.Contains(problem, ex.Message);
        Assert.StartsWith("evil.pt: ", ex.Message);
    }

    /// <summary>Python-style escapes (\xHH with exactly two digits, \n) to a Latin-1 string of bytes.</summary>
    private static string Unescape(string s) =>
        System.Text.RegularExpressions.Regex.Replace(s, @"\\x([0-9a-fA-F]{2})|\\n", m => m.Value == @"\n" ? "\n" : ((char)Convert.ToByte(m.Groups[1].Value, 16)).ToString());

    [Fact]
    public void Structural_problems_in_the_archive_are_typed_errors()
    {
        byte[] good = TorchFile.SaveTensor(Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 2, 2));
        Assert.Equal(new float[] { 1, 2, 3, 4 }, TorchFile.LoadTensor(good, "ok.pt").Values.ToArray());

        // Storage entry missing.
        string pkl = Encoding.Latin1.GetString(ReadEntry(good, "archive/data.pkl"));
        var ex = Assert.Throws<TensorFileException>(() => TorchFile.LoadTensor(Archive(pkl), "m.pt"));
        Assert.Contains("missing zip entry 'archive/data/0'", ex.Message);
        // Storage shorter than the view.
        ex = Assert.Throws<TensorFileException>(() => TorchFile.LoadTensor(Archive(pkl, ("archive/data/0", new byte[8])), "s.pt"));
        Assert.Contains("declares 4", ex.Message);
        // No version entry.
        var zip = new StoredZipWriter();
        zip.Add("archive/data.pkl", ReadEntry(good, "archive/data.pkl"));
        zip.Add("archive/data/0", new byte[16]);
        Assert.Contains("version", Assert.Throws<TensorFileException>(() => TorchFile.LoadTensor(zip.ToArray(), "v.pt")).Message);
        // Not a zip, and truncated.
        Assert.Contains("not a zip", Assert.Throws<TensorFileException>(() => TorchFile.LoadTensor(new byte[100], "z.pt")).Message);
        Assert.Throws<TensorFileException>(() => TorchFile.LoadTensor(good[..(good.Length / 2)], "t.pt"));
        // A state dict is not a tensor and vice versa.
        Assert.Contains("not a state dict", Assert.Throws<TensorFileException>(() => TorchFile.LoadStateDict(good, "x.pt")).Message);
    }

    [Fact]
    public void Compressed_entries_are_refused()
    {
        using var ms = new MemoryStream();
        using (var z = new System.IO.Compression.ZipArchive(ms, System.IO.Compression.ZipArchiveMode.Create, true))
        {
            foreach (var (name, data) in new[] { ("archive/data.pkl", Encoding.Latin1.GetBytes("\x80\x02N.")), ("archive/version", "3\n"u8.ToArray()) })
            {
                var e = z.CreateEntry(name, System.IO.Compression.CompressionLevel.Optimal);
                using var s = e.Open();
                s.Write(data);
            }
        }
        var ex = Assert.Throws<TensorFileException>(() => TorchFile.LoadTensor(ms.ToArray(), "c.pt"));
        Assert.Contains("compressed", ex.Message);
    }

    [Fact]
    public void Crc32_matches_zlib()
    {
        byte[] data = Encoding.ASCII.GetBytes("The quick brown fox jumps over the lazy dog");
        Assert.Equal(0x414FA339u, System.IO.Hashing.Crc32.HashToUInt32(data));
        Assert.Equal(0u, System.IO.Hashing.Crc32.HashToUInt32(ReadOnlySpan<byte>.Empty));
    }

    internal static byte[] ReadEntry(byte[] zip, string name)
    {
        ZipEntry e = StoredZipReader.ReadEntries(zip, "x")[name];
        return zip.AsSpan(e.DataOffset, e.Length).ToArray();
    }
}
