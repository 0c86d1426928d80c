using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Auth;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Store;
using LoPAProxy.Proxy.Tenancy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.FineTuning;

/// <summary>
/// OpenAI's Files API for fine-tuning data (tenant key): POST /v1/files (multipart: file, purpose "fine-tune"),
/// GET /v1/files, GET /v1/files/{id}, GET /v1/files/{id}/content, DELETE /v1/files/{id}. A file is checked as
/// fine-tuning data when it arrives (<see cref="TrainingFile"/>: format, targets, line numbers in the error) and kept
/// in the store per tenant, within Quotas:MaxFileBytes per file and Quotas:MaxFileBytesPerTenant in all. Another
/// tenant's file is a 404, the same as a missing one.
/// </summary>
public static class FileEndpoints
{
    public const string FineTunePurpose = "fine-tune";

    public static void MapFiles(this IEndpointRouteBuilder app)
    {
        RouteGroupBuilder files = app.MapGroup("/v1/files")
            .RequireAuthorization(ApiKeyAuthenticationHandler.TenantPolicy).WithTags("files");
        files.MapPost("", TenancyEndpoints.Handler(h => TenantCall(h, (s, t) => UploadAsync(h, s, t))))
            .Describe("Upload a fine-tuning file (multipart: file, purpose=fine-tune)", 200);
        files.MapGet("", TenancyEndpoints.Handler(h => TenantCall(h, (s, t) => ListAsync(h, s, t))))
            .Describe("List the caller's files, newest first (purpose, limit, after, order)", 200);
        files.MapGet("/{id}", (HttpContext h, string id) => TenantCall(h, (s, t) => GetAsync(h, s, t, id)))
            .Describe("One file", 200);
        files.MapGet("/{id}/content", (HttpContext h, string id) => TenantCall(h, (s, t) => ContentAsync(h, s, t, id)))
            .Describe("A file's bytes, as uploaded", 200);
        files.MapDelete("/{id}", (HttpContext h, string id) => TenantCall(h, (s, t) => DeleteAsync(h, s, t, id)))
            .Describe("Delete a file", 200);
    }

    private static Task TenantCall(HttpContext h, Func<IFileStore, string, Task<IResult>> action) =>
        TenancyEndpoints.Guard(h, TenancyEndpoints.Tenant, (_, tenant) =>
            action(h.RequestServices.GetRequiredService<IFileStore>(), tenant!));

    private static async Task<IResult> UploadAsync(HttpContext h, IFileStore store, string tenant)
    {
        QuotaOptions quotas = h.RequestServices.GetRequiredService<IOptions<LoPAOptions>>().Value.Quotas;
        if (!h.Request.HasFormContentType)
            throw ApiException.BadRequest("upload as multipart/form-data (file, purpose)", null, "invalid_multipart");
        IFormCollection form = await TenancyEndpoints.ReadUploadFormAsync(h, quotas.MaxFileBytes);
        string purpose = form["purpose"].FirstOrDefault()
            ?? throw ApiException.BadRequest("the 'purpose' field is required", "purpose");
        if (purpose != FineTunePurpose)
            throw Errors.Unsupported("purpose", $"only '{FineTunePurpose}' files are kept here, not '{purpose}'");
        IFormFile file = form.Files.GetFile("file")
            ?? throw ApiException.BadRequest("the 'file' field is required", "file", "missing_file");
        byte[] content = await TenancyEndpoints.ReadFormFileAsync(file, quotas.MaxFileBytes, h.RequestAborted);
        TrainingFileSummary summary;
        try
        {
            summary = TrainingFile.Validate(content);
        }
        catch (TrainingFileException e)
        {
            throw ApiException.BadRequest($"'{file.FileName}' is not fine-tuning data: {e.Message}", "file",
                "invalid_file");
        }
        var info = new StoredFileInfo("file-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(12))
            .ToLowerInvariant(), tenant, SafeName(file.FileName), purpose, content.Length, DateTimeOffset.UtcNow,
            summary.Format, summary.Examples);
        await store.PutFileAsync(info, content, quotas.MaxFileBytesPerTenant, h.RequestAborted);
        return Json(FileObject(info));
    }

    /// <summary>The file's own name, at most 255 characters, no path.</summary>
    private static string SafeName(string name)
    {
        string bare = Path.GetFileName(name.Replace('\\', '/'));
        return bare.Length is > 0 and <= 255 ? bare : "upload.jsonl";
    }

    private static async Task<IResult> ListAsync(HttpContext h, IFileStore store, string tenant)
    {
        IQueryCollection q = h.Request.Query;
        IEnumerable<StoredFileInfo> files = await store.ListFilesAsync(tenant, h.RequestAborted);
        if (q["purpose"].FirstOrDefault() is { } purpose) files = files.Where(f => f.Purpose == purpose);
        if (q["order"].FirstOrDefault() is { } order)
        {
            files = order switch
            {
                "asc" => files.Reverse(),
                "desc" => files,
                _ => throw ApiException.BadRequest($"'order' is asc or desc, not '{order}'", "order"),
            };
        }
        List<StoredFileInfo> all = files.ToList();
        if (q["after"].FirstOrDefault() is { } after)
            all = all.SkipWhile(f => f.Id != after).Skip(1).ToList();
        int limit = Limit(q["limit"].FirstOrDefault());
        var page = new JsonArray(all.Take(limit).Select(f => (JsonNode)FileObject(f)).ToArray());
        return Json(new JsonObject
        {
            ["object"] = "list", ["data"] = page, ["has_more"] = all.Count > limit,
            ["first_id"] = all.Count > 0 ? all[0].Id : null, ["last_id"] = all.Count > 0 ? all[^1].Id : null,
        });
    }

    private static int Limit(string? text)
    {
        if (text is null) return 10_000;
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n is >= 1 and <= 10_000
            ? n
            : throw ApiException.BadRequest("'limit' is a whole number from 1 to 10000", "limit");
    }

    private static async Task<IResult> GetAsync(HttpContext h, IFileStore store, string tenant, string id) =>
        Json(FileObject(await store.GetFileAsync(tenant, id, h.RequestAborted) ?? throw NotFound(id)));

    private static async Task<IResult> ContentAsync(HttpContext h, IFileStore store, string tenant, string id)
    {
        StoredFileInfo info = await store.GetFileAsync(tenant, id, h.RequestAborted) ?? throw NotFound(id);
        byte[] content = await store.ReadFileContentAsync(tenant, id, h.RequestAborted) ?? throw NotFound(id);
        return Results.File(content, "application/octet-stream", info.FileName);
    }

    private static async Task<IResult> DeleteAsync(HttpContext h, IFileStore store, string tenant, string id)
    {
        if (!await store.DeleteFileAsync(tenant, id, h.RequestAborted)) throw NotFound(id);
        return Json(new JsonObject { ["id"] = id, ["object"] = "file", ["deleted"] = true });
    }

    /// <summary>OpenAI's file object; format and examples are what the check found (LoPA's additions).</summary>
    private static JsonObject FileObject(StoredFileInfo f) => new()
    {
        ["id"] = f.Id, ["object"] = "file", ["bytes"] = f.Bytes, ["created_at"] = f.Created.ToUnixTimeSeconds(),
        ["filename"] = f.FileName, ["purpose"] = f.Purpose, ["status"] = "processed", ["status_details"] = null,
        ["expires_at"] = null, ["format"] = f.Format, ["examples"] = f.Examples,
    };

    private static IResult Json(JsonObject body) => Results.Text(body.ToJsonString(), "application/json");

    private static ApiException NotFound(string id) =>
        new(404, $"No such File object: {id}", "id", "file_not_found") { Type = "invalid_request_error" };
}
