using System.Runtime.InteropServices;

namespace LoPAProxy.Cli;

/// <summary>
/// Files only their owner may read: `lopa up` keeps keys, the store (tenant key hashes, adapters, usage) and its
/// log in its state folder. The process umask is set to 077 so that everything written from then on — by this
/// code, SQLite (the database, -wal, -shm), the model converter, the log — is created 0600 (folders 0700), and the
/// helpers here also tighten what an older version left more open.
/// </summary>
internal static class OwnerOnly
{
    private const UnixFileMode File600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode Folder700 = File600 | UnixFileMode.UserExecute;

    [DllImport("libc", SetLastError = true)]
    private static extern uint umask(uint mask);

    /// <summary>From now on, files and folders this process creates are its owner's alone.</summary>
    public static void ForThisProcess()
    {
        if (!OperatingSystem.IsWindows()) _ = umask(0b000_111_111); // returns the old mask, never fails
    }

    /// <summary>Creates the folder (or tightens it) with mode 0700, and every file already in it to 0600.</summary>
    public static string Folder(string path)
    {
        Directory.CreateDirectory(path);
        if (OperatingSystem.IsWindows()) return path;
        File.SetUnixFileMode(path, Folder700);
        foreach (string entry in Directory.EnumerateFileSystemEntries(path, "*", SearchOption.AllDirectories))
            File.SetUnixFileMode(entry, Directory.Exists(entry) ? Folder700 : File600);
        return path;
    }

    /// <summary>Writes the file, created 0600 from its first byte (no window in which others may open it).</summary>
    public static void Write(string path, string content)
    {
        using FileStream stream = Create(path);
        using var writer = new StreamWriter(stream);
        writer.Write(content);
    }

    /// <summary>A new (or emptied) file with mode 0600.</summary>
    public static FileStream Create(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = File600;
        var stream = new FileStream(path, options);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, File600); // it may have existed, more open
        return stream;
    }
}
