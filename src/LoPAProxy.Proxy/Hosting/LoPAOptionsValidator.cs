using LoPAProxy.Core.Encoders;
using LoPAProxy.Proxy.Configuration;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Hosting;

/// <summary>Start-up validation: every failure names the configuration key that is wrong.</summary>
public sealed class LoPAOptionsValidator(Dialects.DialectCatalog dialects) : IValidateOptions<LoPAOptions>
{

    public ValidateOptionsResult Validate(string? name, LoPAOptions o)
    {
        var errors = new List<string>();
        if (o.Clusters.Count == 0) errors.Add("LoPA:Clusters: at least one backend cluster is required");
        foreach (var (id, c) in o.Clusters)
        {
            string key = $"LoPA:Clusters:{id}";
            if (!dialects.IsKnown(c.Dialect))
                errors.Add($"{key}:Dialect: '{c.Dialect}' is not one of {string.Join(", ", dialects.Names)}");
            if (string.IsNullOrWhiteSpace(c.Model)) errors.Add($"{key}:Model: the backend's model name is required");
            if (c.HiddenSize <= 0) errors.Add($"{key}:HiddenSize: must be positive");
            if (dialects.NeedsModel(c.Dialect) && string.IsNullOrWhiteSpace(c.ModelPath))
            {
                errors.Add($"{key}:ModelPath: the {c.Dialect} dialect needs the model's tokenizer (and embedding "
                    + "table)");
            }

            if (c.MaxModelLen is < 1) errors.Add($"{key}:MaxModelLen: must be positive");
            if (c.ApiKey is { Length: 0 })
                errors.Add($"{key}:ApiKey: empty; leave it unset for a backend without a key");
        }
        EncoderOptions encoders = o.ToEncoderOptions();
        foreach (string e in o.Encoders)
        {
            if (!EncoderFactory.IsKnown(e, encoders))
                errors.Add($"LoPA:Encoders: unknown encoder '{e}' ({string.Join(", ", EncoderFactory.Names(encoders))})");
        }

        foreach (var (encoderName, onnx) in o.OnnxEncoders)
        {
            try
            {
                _ = onnx.CudaDevice;
            }
            catch (InvalidOperationException e)
            {
                errors.Add($"LoPA:OnnxEncoders:{encoderName}:Device: {e.Message}");
            }
            if (onnx.Threads < 0)
                errors.Add($"LoPA:OnnxEncoders:{encoderName}:Threads: must be 0 (one per core, at most 4) or more");
            if (onnx.Directory is { } dir && !File.Exists(Path.Combine(dir, "model.onnx")))
                errors.Add($"LoPA:OnnxEncoders:{encoderName}:Directory: no model.onnx in '{dir}'");
        }
        if (o.Encoding.MaxBatch < 1)
            errors.Add("LoPA:Encoding:MaxBatch: must be at least 1 (1 turns micro-batching off)");
        if (o.Encoding.MaxWaitMs is < 0 or > 1000) errors.Add("LoPA:Encoding:MaxWaitMs: must be 0 to 1000");
        if (o.Encoding.CacheMiB < 0) errors.Add("LoPA:Encoding:CacheMiB: must be 0 (off) or more");
        if (o.Adapters.CacheSize < 1) errors.Add("LoPA:Adapters:CacheSize: must be at least 1");
        foreach (var (tenant, t) in o.Tenants)
        {
            if (!Store.Names.IsValid(tenant))
                errors.Add($"LoPA:Tenants:{tenant}: {Store.Names.Rule("tenant names")}");
            for (int i = 0; i < t.ApiKeys.Count; i++)
            {
                if (t.ApiKeys[i].Length < 16)
                    errors.Add($"LoPA:Tenants:{tenant}:ApiKeys:{i}: keys must be at least 16 characters");
            }
        }
        if (o.Limits.MaxBodyBytes < 1024) errors.Add("LoPA:Limits:MaxBodyBytes: must be at least 1024");
        if (o.Limits.BackendTimeoutSeconds < 1) errors.Add("LoPA:Limits:BackendTimeoutSeconds: must be at least 1");
        if (o.Limits.MaxPromptsPerRequest < 1) errors.Add("LoPA:Limits:MaxPromptsPerRequest: must be at least 1");
        if (o.Limits.MaxEmbeddingValuesPerRequest < 1)
            errors.Add("LoPA:Limits:MaxEmbeddingValuesPerRequest: must be positive (or unset: the model's context)");
        if (o.Limits.MaxRewriteBytesInFlight < 1) errors.Add("LoPA:Limits:MaxRewriteBytesInFlight: must be positive");
        if (o.Limits.RewriteQueueSeconds is < 0 or > 600)
            errors.Add("LoPA:Limits:RewriteQueueSeconds: must be 0 to 600");
        if (o.Limits.MaxClientEmbeddingRows < 1) errors.Add("LoPA:Limits:MaxClientEmbeddingRows: must be positive");
        if (o.Adapters.RevalidateSeconds <= 0) errors.Add("LoPA:Adapters:RevalidateSeconds: must be positive");
        if (o.Adapters.Directory is not null)
        {
            errors.Add("LoPA:Adapters:Directory: adapters live in the store now; import the folders once with "
                + "`lopa adapter import <dir> --config <proxy.json>` and remove this key");
        }

        if (o.Store.Kind == StoreKind.Directory)
        {
            errors.Add("LoPA:Store:Kind: the directory store is gone; import the folders into the store with "
                + "`lopa adapter import <dir> --config <proxy.json>` and use sqlite or postgres");
        }

        if (o.Store.Kind == StoreKind.Sqlite && string.IsNullOrWhiteSpace(o.Store.Path))
            errors.Add("LoPA:Store:Path: required for the sqlite store");
        if (o.Store.Kind == StoreKind.Postgres
            && string.IsNullOrWhiteSpace(o.Store.ConnectionString))
        {
            errors.Add("LoPA:Store:ConnectionString: required for the postgres store");
        }

        if (o.AdminKey is { Length: < 16 }) errors.Add("LoPA:AdminKey: must be at least 16 characters");
        if (o.Quotas.MaxAdaptersPerTenant < 1 || o.Quotas.MaxBytesPerTenant < 1
            || o.Quotas.MaxUploadBytes < 1 || o.Quotas.MaxFileBytes < 1 || o.Quotas.MaxFileBytesPerTenant < 1)
        {
            errors.Add("LoPA:Quotas: limits must be positive");
        }

        ValidateLimits(o, errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void ValidateLimits(LoPAOptions o, List<string> errors)
    {
        RateLimitOptions r = o.RateLimits;
        const string Key = "LoPA:RateLimits";
        if (r.RequestsPerMinute < 0 || r.TokensPerMinute < 0 || r.ConcurrentRequests < 0 || r.TokenBudget < 0)
            errors.Add($"{Key}: limits are 0 (none) or positive");
        if (!Limits.BudgetPeriods.TryParse(r.BudgetPeriod, out _))
        {
            errors.Add($"{Key}:BudgetPeriod: '{r.BudgetPeriod}' is not one of " +
                string.Join(", ", Limits.BudgetPeriods.Names));
        }

        if (r.CompletionTokensWhenUnset < 0) errors.Add($"{Key}:CompletionTokensWhenUnset: must be 0 or more");
        if (r.EffectiveCounters(o.Store) == CountersKind.Postgres && string.IsNullOrWhiteSpace(r.ConnectionString)
            && string.IsNullOrWhiteSpace(o.Store.ConnectionString))
        {
            errors.Add($"{Key}:ConnectionString: shared counters need a PostgreSQL connection string " +
                "(this one, or LoPA:Store:ConnectionString)");
        }

        if (r.CountersTimeoutMs < 1) errors.Add($"{Key}:CountersTimeoutMs: must be positive");
        if (r.MaxConnections < 1) errors.Add($"{Key}:MaxConnections: must be at least 1");
        if (r.LeaseSeconds < 3) errors.Add($"{Key}:LeaseSeconds: must be at least 3");
        if (o.Usage.FlushSeconds is <= 0 or > 3600)
            errors.Add("LoPA:Usage:FlushSeconds: must be over 0 and at most 3600");
    }
}
