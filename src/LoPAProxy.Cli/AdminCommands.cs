using System.CommandLine;
using System.Net.Http.Headers;
using System.Net.Http.Json;

namespace LoPAProxy.Cli;

/// <summary>
/// `lopa tenant create|list|disable|enable`, `lopa key issue|list|revoke`, `lopa limits show|set|clear` and
/// `lopa usage`: the admin API, with the admin key.
/// </summary>
internal static class AdminCommands
{
    private static Option<string> Url() => new("--url")
    {
        Description = "proxy base URL (or LOPA_URL)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("LOPA_URL") ?? "http://127.0.0.1:8080",
    };

    private static Option<string?> AdminKey() => new("--admin-key")
    {
        Description = "the admin key (or LOPA_ADMIN_KEY)",
    };

    private static HttpClient Client(ParseResult p, Option<string> url, Option<string?> key)
    {
        string k = p.GetValue(key) ?? Environment.GetEnvironmentVariable("LOPA_ADMIN_KEY")
            ?? throw new ArgumentException("pass --admin-key or set LOPA_ADMIN_KEY (lopa up keeps it in its state folder: admin.key)");
        var c = new HttpClient { BaseAddress = new Uri(p.GetValue(url)!.TrimEnd('/') + "/") };
        c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", k);
        return c;
    }

    /// <summary>One admin call: the command's arguments → a request.</summary>
    private static Command Call(string name, string description, Argument<string>[] arguments,
        Func<HttpClient, ParseResult, CancellationToken, Task<HttpResponseMessage>> send)
    {
        Option<string> url = Url();
        Option<string?> key = AdminKey();
        Option<bool> json = ApiOutput.JsonOption();
        var command = new Command(name, description) { url, key, json };
        foreach (Argument<string> a in arguments) command.Arguments.Add(a);
        command.SetAction(async (p, cancel) =>
        {
            using HttpClient c = Client(p, url, key);
            return await ApiOutput.PrintAsync(await send(c, p, cancel), p.GetValue(json));
        });
        return command;
    }

    public static Command Tenant()
    {
        var tenant = new Command("tenant", "Tenants (admin API)");
        var name = new Argument<string>("name") { Description = "tenant name (1–64 of A-Z a-z 0-9 . _ -)" };
        tenant.Subcommands.Add(Call("create", "Create a tenant", [name],
            (c, p, t) => c.PostAsJsonAsync("admin/tenants", new { name = p.GetValue(name) }, t)));
        tenant.Subcommands.Add(Call("list", "List tenants", [], (c, _, t) => c.GetAsync("admin/tenants", t)));
        var disableName = new Argument<string>("name");
        tenant.Subcommands.Add(Call("disable", "Disable a tenant (its keys stop working at once)", [disableName],
            (c, p, t) => c.PostAsync($"admin/tenants/{Uri.EscapeDataString(p.GetValue(disableName)!)}/disable", null,
                t)));
        var enableName = new Argument<string>("name");
        tenant.Subcommands.Add(Call("enable", "Enable a tenant again", [enableName],
            (c, p, t) => c.PostAsync($"admin/tenants/{Uri.EscapeDataString(p.GetValue(enableName)!)}/enable", null,
                t)));
        return tenant;
    }

    public static Command Key()
    {
        var key = new Command("key", "Tenant API keys (admin API)");
        var issueFor = new Argument<string>("tenant");
        key.Subcommands.Add(Call("issue", "Issue a key (shown once; only its hash is stored)", [issueFor],
            (c, p, t) => c.PostAsync($"admin/tenants/{Uri.EscapeDataString(p.GetValue(issueFor)!)}/keys", null, t)));
        var listFor = new Argument<string>("tenant");
        key.Subcommands.Add(Call("list", "List a tenant's keys (ids, never the keys)", [listFor],
            (c, p, t) => c.GetAsync($"admin/tenants/{Uri.EscapeDataString(p.GetValue(listFor)!)}/keys", t)));
        var revokeFor = new Argument<string>("tenant");
        var id = new Argument<string>("id") { Description = "the key's id (key_…)" };
        key.Subcommands.Add(Call("revoke", "Revoke a key", [revokeFor, id],
            (c, p, t) => c.DeleteAsync(
                $"admin/tenants/{Uri.EscapeDataString(p.GetValue(revokeFor)!)}/keys/{Uri.EscapeDataString(p.GetValue(id)!)}", t)));
        return key;
    }

    public static Command Limits()
    {
        var limits = new Command("limits", "A tenant's rate limits and token budget (admin API; 0 = no limit)");
        var showFor = new Argument<string>("tenant");
        limits.Subcommands.Add(Call("show", "Limits in effect, defaults, overrides and budget used", [showFor],
            (c, p, t) => c.GetAsync(LimitsPath(p.GetValue(showFor)!), t)));
        var clearFor = new Argument<string>("tenant");
        limits.Subcommands.Add(Call("clear", "Remove the tenant's overrides (the defaults apply)", [clearFor],
            (c, p, t) => c.DeleteAsync(LimitsPath(p.GetValue(clearFor)!), t)));
        var setFor = new Argument<string>("tenant");
        var rpm = new Option<long?>("--rpm") { Description = "requests per minute" };
        var tpm = new Option<long?>("--tpm") { Description = "tokens per minute (soft-prompt rows count)" };
        var concurrent = new Option<int?>("--concurrent") { Description = "requests in flight at once" };
        var budget = new Option<long?>("--budget") { Description = "tokens per budget period" };
        var period = new Option<string?>("--budget-period") { Description = "hour | day | week | month (UTC)" };
        Command set = Call("set", "Replace the tenant's overrides (options left out keep the default)", [setFor],
            (c, p, t) => c.PutAsJsonAsync(LimitsPath(p.GetValue(setFor)!), new Dictionary<string, object?>
            {
                ["requests_per_minute"] = p.GetValue(rpm), ["tokens_per_minute"] = p.GetValue(tpm),
                ["concurrent_requests"] = p.GetValue(concurrent), ["token_budget"] = p.GetValue(budget),
                ["budget_period"] = p.GetValue(period),
            }, t));
        foreach (Option option in new Option[] { rpm, tpm, concurrent, budget, period }) set.Options.Add(option);
        limits.Subcommands.Add(set);
        return limits;
    }

    public static Command Usage()
    {
        var tenant = new Option<string?>("--tenant") { Description = "one tenant (default: all)" };
        var width = new Option<string>("--bucket-width")
        {
            Description = "1h (last 24 hours) or 1d (last 7 days)", DefaultValueFactory = _ => "1d",
        };
        Command usage = Call("usage", "Tokens, requests, errors and refusals per tenant and adapter (admin API)", [],
            (c, p, t) => c.GetAsync(UsagePath(p.GetValue(tenant), p.GetValue(width)!), t));
        usage.Options.Add(tenant);
        usage.Options.Add(width);
        return usage;
    }

    private static string LimitsPath(string tenant) => $"admin/tenants/{Uri.EscapeDataString(tenant)}/limits";

    private static string UsagePath(string? tenant, string width) =>
        $"admin/usage?bucket_width={Uri.EscapeDataString(width)}"
        + (tenant is null ? "" : "&tenant=" + Uri.EscapeDataString(tenant));
}
