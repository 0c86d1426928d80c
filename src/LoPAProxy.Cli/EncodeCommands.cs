using System.CommandLine;
using System.Globalization;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Generation;
using LoPAProxy.Engine.Formats.Torch;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Cli;

/// <summary>`lopa encode` (instance → the soft prompt the proxy sends) and `lopa embed` (instance → x).</summary>
internal static class EncodeCommands
{
    private static Option<string?> EncoderDir() => new("--encoder-dir")
    {
        Description = "an ONNX encoder directory (model.onnx, vocab.txt, encoder.json) for an encoder of your own; " +
            "minilm and arctic-xs need none (they come with the NuGet restore)",
    };
    private static Option<string?> Model() => new("--model")
    {
        Description = "foundation model for the fm-mean encoder (or LOPA_FM_MODEL)",
    };

    /// <summary>Encoder file locations from the command line: --encoder-dir applies to the named encoder, --model to
    /// fm-mean.</summary>
    internal static EncoderOptions Options(string? encoderDir, string? model, string encoder) => new()
    {
        Onnx = encoderDir is null
            ? new Dictionary<string, Core.Encoders.Onnx.OnnxEncoderSettings>()
            : new Dictionary<string, Core.Encoders.Onnx.OnnxEncoderSettings> { [encoder] = new() { Directory = encoderDir } },
        FoundationModel = model,
    };

    public static Command Encode()
    {
        var adapterPath = new Option<string>("--adapter")
        {
            Description = "adapter directory or .safetensors",
            Required = true,
        };
        var text = new Option<string>("--text") { Description = "the instance text", Required = true };
        var output = new Option<string>("--out")
        {
            Description = "where to write the torch.save'd Z [m, d]",
            Required = true,
        };
        var dtype = new Option<string>("--dtype")
        {
            Description = "fp32 | bf16 | fp16",
            DefaultValueFactory = _ => "fp32",
        };
        var encoderDir = EncoderDir();
        var model = Model();
        var command = new Command("encode",
            "Write the soft prompt Z for one instance exactly as the proxy sends it (torch.save, loadable with weights_only=True)")
            { adapterPath, text, output, dtype, encoderDir, model };
        command.SetAction(p =>
        {
            LopaAdapter adapter;
            try { adapter = LopaAdapter.Load(p.GetValue(adapterPath)!); }
            catch (AdapterException e) { throw new InvalidOperationException(e.Message, e); }
            DType wire = p.GetValue(dtype) switch
            {
                "fp32" => DType.F32,
                "bf16" => DType.BF16,
                "fp16" => DType.F16,
                var d => throw new ArgumentException($"--dtype must be fp32, bf16 or fp16, not '{d}'"),
            };
            float[] x = Array.Empty<float>();
            if (adapter.Config.UsesEncoder)
            {
                IInstanceEncoder encoder = EncoderFactory.Create(adapter.Config.Encoder!,
                    Options(p.GetValue(encoderDir), p.GetValue(model), adapter.Config.Encoder!));
                if (encoder.Dim != adapter.Config.EncoderDim) throw new InvalidOperationException($"encoder {encoder.Name} gives h = {encoder.Dim}, the adapter expects {adapter.Config.EncoderDim}");
                x = new float[encoder.Dim];
                encoder.Encode(new[] { p.GetValue(text)! }, x);
            }
            float[] z = new SoftPromptGenerator(adapter).Generate(x, 1);
            File.WriteAllBytes(p.GetValue(output)!, TorchFile.SaveTensor(Tensor.FromArray(z,
                adapter.Config.NumVirtualTokens, adapter.Config.TokenDim), wire));
            Console.WriteLine($"wrote {p.GetValue(output)}: Z [{adapter.Config.NumVirtualTokens}, {adapter.Config.TokenDim}] {p.GetValue(dtype)}");
            return 0;
        });
        return command;
    }

    public static Command Embed()
    {
        var encoderName = new Option<string>("--encoder")
        {
            Description = "minilm | arctic-xs | fm-mean | a name given with --encoder-dir",
            Required = true,
        };
        var text = new Option<string>("--text") { Description = "the instance text", Required = true };
        var json = new Option<bool>("--json") { Description = "print a JSON array" };
        var encoderDir = EncoderDir();
        var model = Model();
        var command = new Command("embed", "Print the instance vector x an encoder gives") { encoderName, text, json,
            encoderDir, model };
        command.SetAction(p =>
        {
            string name = p.GetValue(encoderName)!;
            IInstanceEncoder encoder = EncoderFactory.Create(name, Options(p.GetValue(encoderDir), p.GetValue(model),
                name));
            var x = new float[encoder.Dim];
            encoder.Encode(new[] { p.GetValue(text)! }, x);
            string values = string.Join(p.GetValue(json) ? ", " : " ", x.Select(v => v.ToString("R",
                CultureInfo.InvariantCulture)));
            Console.WriteLine(p.GetValue(json) ? $"[{values}]" : values);
            return 0;
        });
        return command;
    }
}
