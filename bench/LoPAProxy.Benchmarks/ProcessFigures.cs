using System.Globalization;

namespace LoPAProxy.Benchmarks;

/// <summary>A process's memory and CPU as Linux reports them (/proc/&lt;pid&gt;/status and /stat).</summary>
public static class ProcessFigures
{
    /// <summary>Clock ticks per second of /proc/&lt;pid&gt;/stat's times (USER_HZ, 100 on Linux).</summary>
    private const double TicksPerSecond = 100;

    /// <summary>A "Field:  N kB" line of /proc/&lt;pid&gt;/status, in bytes (0 when absent).</summary>
    public static long Status(int pid, string field)
    {
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith(field, StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1],
                    CultureInfo.InvariantCulture) * 1024;
            }
        }
        return 0;
    }

    /// <summary>utime + stime of every thread, in seconds.</summary>
    public static double CpuSeconds(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        // The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        long user = long.Parse(fields[11], CultureInfo.InvariantCulture);
        long system = long.Parse(fields[12], CultureInfo.InvariantCulture);
        return (user + system) / TicksPerSecond;
    }
}
