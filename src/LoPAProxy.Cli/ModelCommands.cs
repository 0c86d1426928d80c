using System.CommandLine;
using LoPAProxy.Engine.Formats.Gguf;
using LoPAProxy.ModelServer.Generation;

namespace LoPAProxy.Cli;

/// <summary>`lopa model convert --checkpoint X.bin [--tokenizer T] --out X.gguf`: llama2.c → GGUF.</summary>
internal static class ModelCommands
{
    private static readonly Option<string> Checkpoint = new("--checkpoint")
    {
        Description = "a llama2.c checkpoint (.bin)", Required = true,
    };
    private static readonly Option<string?> Tokenizer = new("--tokenizer")
    {
        Description = "its tokenizer.bin (default: tok<vocab>.bin or tokenizer.bin beside it)",
    };
    private static readonly Option<string> Out = new("--out")
    {
        Description = "the GGUF file to write", Required = true,
    };
    private static readonly Option<string?> Name = new("--name") { Description = "general.name (default: file name)" };
    private static readonly Option<string?> Template = new("--chat-template-file")
    {
        Description = "a Jinja chat template to store in the file (tokenizer.chat_template)",
    };

    public static Command Create()
    {
        var convert = new Command("convert", "Convert a llama2.c checkpoint and its tokenizer to GGUF (F32) for " +
            "llama.cpp") { Checkpoint, Tokenizer, Out, Name, Template };
        convert.SetAction(Convert);
        return new Command("model", "Foundation-model files") { convert };
    }

    private static int Convert(ParseResult parse)
    {
        string checkpoint = parse.GetValue(Checkpoint)!;
        string tokenizer = parse.GetValue(Tokenizer) ?? ModelFiles.Llama2cTokenizerBeside(checkpoint);
        string output = parse.GetValue(Out)!;
        string? template = parse.GetValue(Template) is { } file ? File.ReadAllText(file) : null;
        Llama2cToGguf.Convert(checkpoint, tokenizer, output, parse.GetValue(Name), template);
        GgufFile written = GgufFile.Open(output);
        int? vocabulary = written.GetArray<string>("tokenizer.ggml.tokens")?.Length;
        Console.WriteLine($"wrote {output}: {written.Tensors.Count} tensors, " +
            $"{new FileInfo(output).Length / 1024.0:F0} KiB, vocab {vocabulary}");
        return 0;
    }
}
