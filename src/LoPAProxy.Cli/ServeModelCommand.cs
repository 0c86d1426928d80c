using System.CommandLine;
using LoPAProxy.ModelServer;

namespace LoPAProxy.Cli;

/// <summary>`lopa serve-model --model PATH [--host 127.0.0.1] [--port 8001]`: the OpenAI-compatible reference server.</summary>
internal static class ServeModelCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "llama2.c checkpoint (.bin) or Hugging Face Llama directory", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "tokenizer.bin (default: beside the model)" };
        var name = new Option<string?>("--name") { Description = "model name served (default: file name)" };
        var host = new Option<string>("--host") { Description = "address to bind", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "port (0 = any free port)", DefaultValueFactory = _ => 8001 };
        var concurrent = new Option<int>("--max-concurrent") { Description = "generations at once", DefaultValueFactory = _ => Environment.ProcessorCount };
        var queued = new Option<int>("--max-queued") { Description = "requests waiting before 503", DefaultValueFactory = _ => 64 };
        var template = new Option<string>("--chat-template") { Description = "plain | llama2", DefaultValueFactory = _ => "plain" };
        var delay = new Option<int>("--delay-per-token-ms") { Description = "simulate a slower model (load tests)", DefaultValueFactory = _ => 0 };
        var command = new Command("serve-model", "Serve a Llama-family model over an OpenAI-compatible API that accepts prompt_embeds as vLLM does")
            { model, tokenizer, name, host, port, concurrent, queued, template, delay };
        command.SetAction(parse =>
        {
            var options = new ModelServerOptions
            {
                ModelPath = parse.GetValue(model)!, TokenizerPath = parse.GetValue(tokenizer), ModelName = parse.GetValue(name),
                Host = parse.GetValue(host)!, Port = parse.GetValue(port), MaxConcurrent = parse.GetValue(concurrent),
                MaxQueued = parse.GetValue(queued), ChatTemplate = parse.GetValue(template)!, DelayPerTokenMs = parse.GetValue(delay),
            };
            var app = ModelServerApp.Build(options);
            var served = (LoPAProxy.ModelServer.Generation.ServedModel)app.Services.GetService(typeof(LoPAProxy.ModelServer.Generation.ServedModel))!;
            app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine($"serving {served.Name} at {string.Join(", ", app.Urls)}"));
            app.Run();
            return 0;
        });
        return command;
    }
}
