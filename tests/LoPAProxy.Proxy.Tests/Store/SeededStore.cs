using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Store;

namespace LoPAProxy.Proxy.Tests.Store;

/// <summary>A fixture's adapter folders imported (the way `lopa adapter import` does) into a fresh SQLite store;
/// the proxy is then started on that file.</summary>
public static class SeededStore
{
    /// <summary>Imports {folder}/{tenant}/{adapter}/ and returns the SQLite file's path.</summary>
    public static async Task<string> ImportAsync(string folder)
    {
        string path = Path.Combine(TempDir.Create(), "lopa.db");
        var options = new Proxy.Configuration.StoreOptions { Kind = Proxy.Configuration.StoreKind.Sqlite, Path = path };
        var outcomes = await FolderImport.ImportAsync(options, folder, "1");
        var failed = outcomes.Where(o => o.Result != "imported").ToList();
        if (failed.Count > 0) throw new InvalidOperationException(string.Join("; ", failed));
        return path;
    }
}
