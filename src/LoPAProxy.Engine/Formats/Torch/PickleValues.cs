namespace LoPAProxy.Engine.Formats.Torch;

/// <summary>Values the restricted unpickler produces. Everything else a pickle could build is refused.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

internal sealed record PickleTuple(object?[] Items);

/// <summary>A dict or OrderedDict, keeping insertion order.</summary>
internal sealed class PickleDict
{
    public List<KeyValuePair<object, object?>> Items { get; } = new();
}

/// <summary>The persistent id torch.save writes for a storage: ('storage', torch.XStorage, key, location, numel).</summary>
internal sealed record StorageRef(Tensors.DType DType, string Key, string Location, long Numel);

/// <summary>A tensor as _rebuild_tensor_v2 describes it: a view into a storage.</summary>
internal sealed record TensorRef(StorageRef Storage, long StorageOffset, long[] Size, long[] Stride);

internal sealed class PickleMark
{
    public static readonly PickleMark Instance = new();
}
