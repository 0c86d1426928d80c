using System.CommandLine;
using LoPAProxy.Cli;

var root = new RootCommand("lopa — LoPA soft-prompt proxy, reference model server and adapter tools");
root.Subcommands.Add(UpCommand.Create());
root.Subcommands.Add(ServeModelCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(EngineInfoCommand.Create());
return root.Parse(args).Invoke();
