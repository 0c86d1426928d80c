using System.CommandLine;
using LoPAProxy.Cli;
using LoPAProxy.Engine.Formats;

var root = new RootCommand("lopa — LoPA soft-prompt proxy, reference model server and adapter tools");
root.Subcommands.Add(UpCommand.Create());
root.Subcommands.Add(UpCommand.Env());
root.Subcommands.Add(UpCommand.Down());
root.Subcommands.Add(AdminCommands.Tenant());
root.Subcommands.Add(AdminCommands.Key());
root.Subcommands.Add(AdminCommands.Limits());
root.Subcommands.Add(AdminCommands.Usage());
root.Subcommands.Add(ProxyCommand.Create());
root.Subcommands.Add(ServeModelCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(ModelCommands.Create());
root.Subcommands.Add(AdapterCommands.Create());
root.Subcommands.Add(EncodeCommands.Encode());
root.Subcommands.Add(EncodeCommands.Embed());
root.Subcommands.Add(TrainCommands.Train());
root.Subcommands.Add(TrainCommands.Eval());
root.Subcommands.Add(ProbeCommand.Create());
try
{
    return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (e is Microsoft.Extensions.Options.OptionsValidationException or LoPAProxy.Core.Adapters.AdapterException or FileNotFoundException or DirectoryNotFoundException or TensorFileException or InvalidOperationException or ArgumentException or IOException or HttpRequestException)
{
    // Expected failures (bad paths, bad files, bad values) are one line on stderr, not a stack trace.
    Console.Error.WriteLine($"lopa: {e.Message}");
    return 1;
}
