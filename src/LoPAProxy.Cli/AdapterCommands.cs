using System.CommandLine;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;

namespace LoPAProxy.Cli;

/// <summary>`lopa adapter new | inspect | convert`.</summary>
internal static class AdapterCommands
{
    public static Command Create()
    {
        var adapter = new Command("adapter", "Create, inspect and convert LoPA adapters");
        adapter.Subcommands.Add(New());
        adapter.Subcommands.Add(Inspect());
        adapter.Subcommands.Add(Convert());
        adapter.Subcommands.Add(AdapterImportCommand.Create());
        foreach (Command c in AdapterApiCommands.Create()) adapter.Subcommands.Add(c);
        return adapter;
    }

    private static Command New()
    {
        var encoder = new Option<string>("--encoder")
        {
            Description = "instance encoder: minilm | arctic-xs | fm-mean | your own (with --encoder-dim)",
            Required = true,
        };
        var tokenDim = new Option<int>("--token-dim")
        {
            Description = "d, the foundation model's hidden size",
            Required = true,
        };
        var m = new Option<int>("--m") { Description = "soft-prompt rows", DefaultValueFactory = _ => 10 };
        var r = new Option<int>("--r") { Description = "rank of u·vᵀ", DefaultValueFactory = _ => 4 };
        var hidden = new Option<int>("--hidden")
        {
            Description = "H, the heads' hidden width",
            DefaultValueFactory = _ => 256,
        };
        var encoderDim = new Option<int?>("--encoder-dim") { Description = "h (known for minilm and arctic-xs: 384)" };
        var composition = new Option<string>("--composition")
        {
            Description = "lopa | lopa_add | prompt_tuning | idpg",
            DefaultValueFactory = _ => "lopa",
        };
        var baseModel = new Option<string?>("--base-model") { Description = "the foundation model's name" };
        var seed = new Option<int>("--seed") { Description = "initialisation seed", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "adapter directory to write", Required = true };
        var command = new Command("new",
            "A new adapter with the paper's initialisation (Z_S ~ N(0,1), heads ~ N(0, 0.02), output biases 0)")
            { encoder, tokenDim, m, r, hidden, encoderDim, composition, baseModel, seed, output };
        command.SetAction(p =>
        {
            string enc = p.GetValue(encoder)!;
            if (!EncoderFactory.BuiltIn.Contains(enc) && p.GetValue(encoderDim) is null)
            {
                throw new ArgumentException($"unknown encoder '{enc}' (built in: {string.Join(", ", EncoderFactory.BuiltIn)}); " +
                    "for an ONNX encoder directory of your own, give its width with --encoder-dim");
            }

            Composition comp = AdapterConfig.ParseComposition(p.GetValue(composition)!);
            int h = p.GetValue(encoderDim) ?? EncoderFactory.KnownDim(enc) ?? (comp == Composition.PromptTuning ? 0
                : throw new ArgumentException($"--encoder-dim is required for the {enc} encoder"));
            var config = new AdapterConfig
            {
                BaseModel = p.GetValue(baseModel), NumVirtualTokens = p.GetValue(m), TokenDim = p.GetValue(tokenDim), Rank = comp == Composition.Idpg ? 0 : p.GetValue(r),
                HiddenSize = p.GetValue(hidden), Encoder = comp == Composition.PromptTuning
                    ? null : enc, EncoderDim = h, Composition = comp,
            };
            LopaAdapter.CreateRandom(config, p.GetValue(seed)).SaveDirectory(p.GetValue(output)!);
            Console.WriteLine($"wrote {p.GetValue(output)} ({config.TrainableParameters:N0} trainable parameters)");
            return 0;
        });
        return command;
    }

    private static Command Inspect()
    {
        var path = new Argument<string>("adapter") { Description = "adapter directory or single .safetensors file" };
        var command = new Command("inspect",
            "Show an adapter's config, tensor shapes and trainable parameters") { path };
        command.SetAction(p =>
        {
            LopaAdapter a;
            try { a = LopaAdapter.Load(p.GetValue(path)!); }
            catch (AdapterException e) { throw new InvalidOperationException(e.Message, e); }
            AdapterConfig c = a.Config;
            Console.WriteLine($"peft_type:            {c.PeftType}");
            Console.WriteLine($"composition:          {AdapterConfig.CompositionName(c.Composition)}");
            Console.WriteLine($"base model:           {c.BaseModel ?? "(unspecified)"}");
            Console.WriteLine($"m (virtual tokens):   {c.NumVirtualTokens}");
            Console.WriteLine($"d (token dim):        {c.TokenDim}");
            if (c.UsesEncoder)
            {
                Console.WriteLine($"encoder:              {c.Encoder} (h = {c.EncoderDim})");
                Console.WriteLine($"H (head hidden):      {c.HiddenSize}");
                if (c.Composition != Composition.Idpg) Console.WriteLine($"r (rank):             {c.Rank}");
            }
            Console.WriteLine("tensors:");
            if (a.PromptEmbeddings != null) Console.WriteLine($"  prompt_embeddings    [{c.NumVirtualTokens}, {c.TokenDim}]");
            foreach (var (head, dense, output) in new[] { (a.U, "row_dense", "row_out_proj"), (a.V, "col_dense",
                "col_out_proj"), (a.Idpg, "layer_down_project", "layer_up_project") })
            {
                if (head is null) continue;
                Console.WriteLine($"  {dense + ".weight",-20} [{head.Hidden}, {head.In}]{(head.DenseBias != null ? $"  + bias [{head.Hidden}]" : "")}");
                Console.WriteLine($"  {output + ".weight",-20} [{head.Out}, {head.Hidden}]{(head.OutBias != null ? $"  + bias [{head.Out}]" : "")}");
            }
            Console.WriteLine($"trainable parameters: {c.TrainableParameters:N0} (paper's formula)");
            return 0;
        });
        return command;
    }

    private static Command Convert()
    {
        var peft = new Option<string?>("--peft") { Description = "PEFT adapter_model.bin holding prompt_embeddings" };
        var heads = new Option<string?>("--heads") { Description = "the reference generator's state dict (.pt)" };
        var encoder = new Option<string?>("--encoder")
        {
            Description = "the instance encoder the heads were trained with",
        };
        var baseModel = new Option<string?>("--base-model") { Description = "the foundation model's name" };
        var additive = new Option<bool>("--additive") { Description = "the heads are LoPA_add's (Z = Z_S + u·vᵀ)" };
        var m = new Option<int?>("--m")
        {
            Description = "virtual tokens (only for an IDPG checkpoint without PEFT file)",
        };
        var output = new Option<string>("--out") { Description = "adapter directory to write", Required = true };
        var command = new Command("convert",
            "Convert the paper's reference checkpoints (torch.save state dicts) to this format") { peft, heads, encoder, baseModel, additive, m, output };
        command.SetAction(p =>
        {
            LopaAdapter a;
            try
            {
                a = ReferenceCheckpointConverter.Convert(p.GetValue(peft), p.GetValue(heads), p.GetValue(encoder),
                p.GetValue(baseModel), p.GetValue(additive), p.GetValue(m));
            }
            catch (AdapterException e) { throw new InvalidOperationException(e.Message, e); }
            a.SaveDirectory(p.GetValue(output)!);
            Console.WriteLine($"wrote {p.GetValue(output)}: {AdapterConfig.CompositionName(a.Config.Composition)}, m={a.Config.NumVirtualTokens}, d={a.Config.TokenDim}, {a.Config.TrainableParameters:N0} parameters");
            return 0;
        });
        return command;
    }
}
