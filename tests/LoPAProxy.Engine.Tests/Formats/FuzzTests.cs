using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Formats.SafeTensors;
using LoPAProxy.Engine.Formats.Torch;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Engine.Tests.Formats;

/// <summary>
/// Mutation fuzzing with a fixed seed: thousands of corrupted copies of valid files. A reader may accept
/// a mutant (flipping a float is still a valid file) but must only ever fail with TensorFileException:
/// no IndexOutOfRange, no OutOfMemory, no hang (the whole test is bounded by the runner's timeout).
/// </summary>
public class FuzzTests
{
    private const int Mutants = 3000;

    private static byte[] Mutate(byte[] source, Random rng)
    {
        byte[] b = (byte[])source.Clone();
        switch (rng.Next(6))
        {
            case 0: // flip random bits
                for (int i = 0, n = 1 + rng.Next(8); i < n; i++) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                break;
            case 1: // overwrite with interesting values
                int at = rng.Next(Math.Max(1, b.Length - 8));
                byte[] v = rng.Next(4) switch { 0 => new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F }, 1 => new byte[8], 2 => BitConverter.GetBytes(int.MaxValue), _ => BitConverter.GetBytes(-1L) };
                v.AsSpan(0, Math.Min(v.Length, b.Length - at)).CopyTo(b.AsSpan(at));
                break;
            case 2: // truncate
                return b[..rng.Next(b.Length)];
            case 3: // random bytes in a region
                for (int i = rng.Next(b.Length), end = Math.Min(b.Length, i + 1 + rng.Next(32)); i < end; i++) b[i] = (byte)rng.Next(256);
                break;
            case 4: // duplicate a chunk
                int s = rng.Next(b.Length), len = rng.Next(Math.Min(64, b.Length - s) + 1);
                return b[..s].Concat(b.AsSpan(s, len).ToArray()).Concat(b[s..]).ToArray();
            default: // delete a chunk
                int d = rng.Next(b.Length), dl = rng.Next(Math.Min(64, b.Length - d) + 1);
                return b[..d].Concat(b[(d + dl)..]).ToArray();
        }
        return b;
    }

    private static void Fuzz(byte[] valid, int seed, Action<byte[]> read)
    {
        read(valid); // the seed file itself must parse
        var rng = new Random(seed);
        int accepted = 0, rejected = 0;
        for (int i = 0; i < Mutants; i++)
        {
            byte[] mutant = Mutate(valid, rng);
            try { read(mutant); accepted++; }
            catch (TensorFileException) { rejected++; }
            catch (Exception e) { Assert.Fail($"mutant {i} (seed {seed}) escaped as {e.GetType().Name}: {e.Message}"); }
        }
        Assert.True(rejected > Mutants / 10, $"only {rejected} of {Mutants} mutants were rejected: the fuzzer is not reaching the validator");
    }

    [Fact]
    public void Safetensors_reader_survives_mutants()
    {
        Fuzz(SafeTensorsTests.Sample(), 1, bytes =>
        {
            using var f = SafeTensorsFile.FromBytes(bytes, "fuzz.safetensors");
            foreach (var t in f.Tensors) f.ReadFloat32(t.Name);
        });
    }

    [Fact]
    public void Torch_reader_survives_mutants_of_a_tensor_and_a_state_dict()
    {
        var rng = new Random(2);
        Fuzz(TorchFile.SaveTensor(Tensor.FromArray(Rand.Floats(rng, 40), 4, 10), DType.BF16), 2, bytes => TorchFile.LoadTensor(bytes, "fuzz.pt"));
        string dir = TempDir.Create();
        PyTorch.Run("""
            import sys, torch
            m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
            torch.save(m.state_dict(), sys.argv[1])
            """, Path.Combine(dir, "sd.pt"));
        Fuzz(File.ReadAllBytes(Path.Combine(dir, "sd.pt")), 3, bytes => TorchFile.LoadStateDict(bytes, "fuzz.pt"));
    }

    [Fact]
    public void Llama2c_readers_survive_mutants()
    {
        byte[] tok = File.ReadAllBytes(SharedFiles.Path_("models", "stories260K", "tok512.bin"));
        Fuzz(tok, 4, bytes => Llama2cTokenizerFile.Parse(bytes, "fuzz.bin"));
        byte[] ckpt = File.ReadAllBytes(SharedFiles.Path_("models", "stories260K", "stories260K.bin"));
        // Only the header and size checks stand between bytes and allocation; mutate near the header.
        Fuzz(ckpt, 5, bytes => Llama2cCheckpoint.Load(bytes, "fuzz.bin"));
    }

    [Fact]
    public void Gguf_reader_survives_mutants()
    {
        string path = Path.Combine(TempDir.Create(), "small.gguf");
        new LoPAProxy.Engine.Formats.Gguf.GgufWriter()
            .Add("general.architecture", "llama")
            .Add("llama.context_length", 64u)
            .Add("tokenizer.ggml.model", "llama")
            .Add("tokenizer.ggml.tokens", new[] { "<unk>", "<s>", "</s>", "\u2581a", "b" })
            .Add("tokenizer.ggml.scores", new[] { 0f, 0f, 0f, -1f, -2f })
            .Add("tokenizer.ggml.token_type", new[] { 2, 3, 3, 1, 1 })
            .AddTensor("token_embd.weight", Rand.Floats(new Random(6), 5 * 8), 8, 5)
            .AddTensor("output_norm.weight", Rand.Floats(new Random(7), 8), 8)
            .Write(path);
        Fuzz(File.ReadAllBytes(path), 6, bytes =>
        {
            var gguf = LoPAProxy.Engine.Formats.Gguf.GgufFile.FromBytes(bytes, "fuzz.gguf");
            foreach (var t in gguf.Tensors) gguf.ReadFloat32(t.Name);
        });
    }
}
