using System.CommandLine;

namespace LoPAProxy.Cli;

/// <summary>`lopa up`: the whole stack with embedded defaults. The proxy and reference server are not built yet.</summary>
internal static class UpCommand
{
    public static Command Create()
    {
        var command = new Command("up", "Run the reference model server, the proxy and a demo tenant with embedded defaults");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("lopa up: not yet — the proxy (issue 5) and the reference model server (issue 4) have not landed.");
            Console.Error.WriteLine("What exists today: the tensor engine; try `lopa engine-info`.");
            return 3;
        });
        return command;
    }
}
