namespace LoPAProxy.Engine.Formats;

/// <summary>
/// A tensor, checkpoint or tokenizer file is truncated, corrupt, hostile or unsupported.
/// Every format reader reports bad input with this type only; the message names the file and the problem.
/// </summary>
public sealed class TensorFileException : Exception
{
    public string FileName { get; }
    public string Problem { get; }

    public TensorFileException(string fileName, string problem, Exception? inner = null)
        : base($"{fileName}: {problem}", inner)
    {
        FileName = fileName;
        Problem = problem;
    }
}
