using System.Security.Cryptography;
using LoPAProxy.Core.Adapters;

namespace LoPAProxy.Proxy.Store;

/// <summary>What happened to one adapter folder.</summary>
public sealed record ImportOutcome(string Tenant, string Name, string Version, string Result, string? Detail = null);

/// <summary>
/// Brings adapters kept in folders into the store — the one place a proxy serves adapters from. Layout:
/// {root}/{tenant}/{adapter}/ (adapter_config.json + adapter_model.safetensors), or {root}/{adapter}/ for one named
/// tenant. Every adapter is validated as an upload is; tenants that do not exist are created. Re-running is safe:
/// a version already stored with the same bytes is "unchanged", with other bytes a "conflict" (versions are
/// immutable), and neither stops the rest of the import.
/// </summary>
public static class FolderImport
{
    /// <summary>Opens the store <paramref name="options"/> names (creating its schema if needed) and imports.</summary>
    public static async Task<IReadOnlyList<ImportOutcome>> ImportAsync(Configuration.StoreOptions options,
        string root, string version, string? tenant = null, CancellationToken cancel = default)
    {
        await using ITenancyStore store = TenancyStores.Open(options);
        await store.InitializeAsync(cancel);
        return await ImportAsync(store, root, version, tenant, cancel);
    }

    public static async Task<IReadOnlyList<ImportOutcome>> ImportAsync(ITenancyStore store, string root,
        string version, string? tenant = null, CancellationToken cancel = default)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"no such folder: {root}");
        if (!Names.IsValid(version)) throw new ArgumentException(Names.Rule("versions"));
        var outcomes = new List<ImportOutcome>();
        IEnumerable<(string Tenant, string Folder)> tenants = tenant is null
            ? Subfolders(root).Select(d => (Path.GetFileName(d), d))
            : [(tenant, root)];
        foreach (var (name, folder) in tenants)
        {
            if (!Names.IsValid(name))
            {
                outcomes.Add(new ImportOutcome(name, "", version, "skipped", "not a valid tenant name"));
                continue;
            }
            await TenancyStores.EnsureTenantAsync(store, name, cancel);
            foreach (string adapterFolder in Subfolders(folder))
                outcomes.Add(await ImportOneAsync(store, name, adapterFolder, version, cancel));
        }
        return outcomes;
    }

    private static IEnumerable<string> Subfolders(string folder) =>
        Directory.GetDirectories(folder).Order(StringComparer.Ordinal);

    private static async Task<ImportOutcome> ImportOneAsync(ITenancyStore store, string tenant, string folder,
        string version, CancellationToken cancel)
    {
        string name = Path.GetFileName(folder);
        string configPath = Path.Combine(folder, LopaAdapter.ConfigFile);
        string weightsPath = Path.Combine(folder, LopaAdapter.WeightsFile);
        if (!Names.IsValid(name) || name.Contains('@'))
            return new ImportOutcome(tenant, name, version, "skipped", "not a valid adapter name");
        if (!File.Exists(configPath) || !File.Exists(weightsPath))
        {
            return new ImportOutcome(tenant, name, version, "skipped",
                "no adapter_config.json + adapter_model.safetensors");
        }

        string configJson = await File.ReadAllTextAsync(configPath, cancel);
        byte[] weights = await File.ReadAllBytesAsync(weightsPath, cancel);
        AdapterConfig config;
        try
        {
            config = LopaAdapter.FromParts(configJson, weights, $"{tenant}/{name}").Config;
        }
        catch (AdapterException e)
        {
            return new ImportOutcome(tenant, name, version, "invalid", e.Message);
        }
        var existing = await store.GetAdapterAsync(tenant, name, version, cancel);
        if (existing is not null)
        {
            string sha = Convert.ToHexString(SHA256.HashData(weights)).ToLowerInvariant();
            return existing.Info.Sha256 == sha
                ? new ImportOutcome(tenant, name, version, "unchanged")
                : new ImportOutcome(tenant, name, version, "conflict",
                    $"{name}@{version} is stored with other weights; import under another --version");
        }
        await store.PutAdapterAsync(tenant, name, version, config.ToJson(), weights, config.TrainableParameters,
            activate: true, quota: null, cancel);
        return new ImportOutcome(tenant, name, version, "imported");
    }
}
