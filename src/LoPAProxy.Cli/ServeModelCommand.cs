using System.CommandLine;
using LoPAProxy.ModelServer;

namespace LoPAProxy.Cli;

/// <summary>`lopa serve-model --model PATH [...]`: the OpenAI-compatible reference server (llama.cpp).</summary>
internal static class ServeModelCommand
{
    private static readonly Option<string> Model = new("--model")
    {
        Description = "a GGUF file, or a llama2.c checkpoint (.bin; converted to GGUF once)", Required = true,
    };
    private static readonly Option<string?> Tokenizer = new("--tokenizer")
    {
        Description = "a llama2.c checkpoint's tokenizer.bin (default: beside it)",
    };
    private static readonly Option<string?> Name = new("--name")
    {
        Description = "model name served (default: file name)",
    };
    private static readonly Option<string> Host = new("--host")
    {
        Description = "address to bind", DefaultValueFactory = _ => "127.0.0.1",
    };
    private static readonly Option<int> Port = new("--port")
    {
        Description = "port (0 = any free port)", DefaultValueFactory = _ => 8001,
    };
    private static readonly Option<int> Concurrent = new("--max-concurrent")
    {
        Description = "sequences decoded together", DefaultValueFactory = _ => 8,
    };
    private static readonly Option<int> Queued = new("--max-queued")
    {
        Description = "requests waiting before 503", DefaultValueFactory = _ => 64,
    };
    private static readonly Option<int?> Threads = new("--threads")
    {
        Description = "llama.cpp threads (default: one per core; it spin-waits, so leave cores for others)",
    };
    private static readonly Option<int?> Context = new("--context-length")
    {
        Description = "positions per sequence (default: the model's)",
    };
    private static readonly Option<string> KvCache = new("--kv-cache")
    {
        Description = "KV cache type: f32 | f16 | q8_0", DefaultValueFactory = _ => "f32",
    };
    private static readonly Option<string> Template = new("--chat-template")
    {
        Description = "auto (the model's, else plain) | plain | llama2 | a llama.cpp template name",
        DefaultValueFactory = _ => "auto",
    };
    private static readonly Option<int> Delay = new("--delay-per-token-ms")
    {
        Description = "simulate a slower model (load tests)", DefaultValueFactory = _ => 0,
    };

    public static Command Create()
    {
        var command = new Command("serve-model",
            "Serve a GGUF model (llama.cpp) over an OpenAI-compatible API that accepts prompt_embeds as vLLM does")
        {
            Model, Tokenizer, Name, Host, Port, Concurrent, Queued, Threads, Context, KvCache, Template, Delay,
        };
        command.SetAction(Run);
        return command;
    }

    private static int Run(ParseResult parse)
    {
        var options = new ModelServerOptions
        {
            ModelPath = parse.GetValue(Model)!,
            TokenizerPath = parse.GetValue(Tokenizer),
            ModelName = parse.GetValue(Name),
            Host = parse.GetValue(Host)!,
            Port = parse.GetValue(Port),
            MaxConcurrent = parse.GetValue(Concurrent),
            MaxQueued = parse.GetValue(Queued),
            Threads = parse.GetValue(Threads),
            ContextLength = parse.GetValue(Context),
            KvCacheType = parse.GetValue(KvCache)!,
            ChatTemplate = parse.GetValue(Template)!,
            DelayPerTokenMs = parse.GetValue(Delay),
        };
        var app = ModelServerApp.Build(options);
        string name = options.ModelName ?? Path.GetFileNameWithoutExtension(options.ModelPath);
        app.Lifetime.ApplicationStarted.Register(() =>
            Console.WriteLine($"serving {name} at {string.Join(", ", app.Urls)} ({ModelServerApp.Describe(app)})"));
        app.Run();
        return 0;
    }
}
