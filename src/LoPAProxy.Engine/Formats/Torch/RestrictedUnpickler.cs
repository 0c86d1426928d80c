using System.Buffers.Binary;
using System.Text;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Engine.Formats.Torch;

/// <summary>
/// A pickle interpreter that accepts only what torch.load(weights_only=True) accepts for tensors and
/// state dicts, and never executes code: GLOBAL may name only the allowed callables below, and REDUCE
/// applies them as data constructors. Protocol 2–5 opcodes for primitives, tuples, lists, dicts and the memo.
/// Every length is checked against the bytes that remain before anything is allocated.
/// </summary>
internal sealed class RestrictedUnpickler
{
    private const int MaxMemo = 1 << 20, MaxStack = 1 << 20, MaxDims = 64;

    private static readonly Dictionary<string, DType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = DType.F32, ["HalfStorage"] = DType.F16, ["BFloat16Storage"] = DType.BF16,
        ["DoubleStorage"] = DType.F64, ["LongStorage"] = DType.I64, ["IntStorage"] = DType.I32,
        ["ShortStorage"] = DType.I16, ["CharStorage"] = DType.I8, ["ByteStorage"] = DType.U8, ["BoolStorage"] = DType.Bool,
    };

    private readonly string _file;
    private readonly byte[] _data;
    private int _pos;
    private readonly List<object?> _stack = new();
    private readonly List<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = new();

    private RestrictedUnpickler(byte[] data, string file) { _data = data; _file = file; }

    public static object? Load(byte[] pickle, string file) => new RestrictedUnpickler(pickle, file).Run();

    private TensorFileException Error(string problem) => new(_file, $"data.pkl offset {_pos}: {problem}");

    private object? Run()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Error("pickle ends without STOP");
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: Take(1); break;                                   // PROTO
                case 0x95: Take(8); break;                                   // FRAME (framing is advisory)
                case (byte)'.': return _stack.Count == 1 ? _stack[0] : throw Error($"STOP with {_stack.Count} values on the stack");
                case (byte)'(': _marks.Add(_stack.Count); break;             // MARK
                case (byte)')': Push(new PickleTuple(Array.Empty<object?>())); break;
                case (byte)'t': Push(new PickleTuple(PopToMark().ToArray())); break;
                case 0x85: Push(new PickleTuple(new[] { Pop() })); break;
                case 0x86: { var b = Pop(); var a = Pop(); Push(new PickleTuple(new[] { a, b })); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new PickleTuple(new[] { a, b, c })); break; }
                case (byte)']': Push(new List<object?>()); break;
                case (byte)'a': { var v = Pop(); AsList(Peek()).Add(v); break; }
                case (byte)'e': { var items = PopToMark(); AsList(Peek()).AddRange(items); break; }
                case (byte)'}': Push(new PickleDict()); break;
                case (byte)'s': { var v = Pop(); var k = Pop(); SetItem(Peek(), k, v); break; }
                case (byte)'u':
                    {
                        var items = PopToMark();
                        if (items.Count % 2 != 0) throw Error("SETITEMS with an odd number of values");
                        object? target = Peek();
                        for (int i = 0; i < items.Count; i += 2) SetItem(target, items[i], items[i + 1]);
                        break;
                    }
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'K': Push((long)Take(1)[0]); break;
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                case 0x8a: Push(ReadLong1()); break;
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;
                case (byte)'X': Push(ReadString(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;
                case 0x8c: Push(ReadString(Take(1)[0])); break;
                case 0x8d: Push(ReadString(BinaryPrimitives.ReadUInt64LittleEndian(Take(8)))); break;
                case (byte)'U': Push(Encoding.Latin1.GetString(Take(Take(1)[0]))); break;           // SHORT_BINSTRING
                case (byte)'T': Push(Encoding.Latin1.GetString(Take(CheckedLength(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))))); break;
                case (byte)'C': Push(Take(Take(1)[0]).ToArray()); break;                             // SHORT_BINBYTES
                case (byte)'B': Push(Take(CheckedLength(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))).ToArray()); break;
                case (byte)'q': Memo(Take(1)[0], Peek()); break;
                case (byte)'r': Memo(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)), Peek()); break;
                case 0x94: Memo(_memo.Count, Peek()); break;                                          // MEMOIZE
                case (byte)'h': Push(Recall(Take(1)[0])); break;
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;
                case (byte)'0': Pop(); break;                                                        // POP
                case (byte)'2': Push(Peek()); break;                                                 // DUP
                case (byte)'1': PopToMark(); break;                                                  // POP_MARK
                case (byte)'c': Push(Global(ReadLine(), ReadLine())); break;
                case 0x93: { var name = Pop() as string; var module = Pop() as string; Push(Global(module ?? throw Error("STACK_GLOBAL module is not a string"), name ?? throw Error("STACK_GLOBAL name is not a string"))); break; }
                case (byte)'Q': Push(PersistentLoad(Pop())); break;
                case (byte)'R': { var args = Pop(); var fn = Pop(); Push(Reduce(fn, args)); break; }
                case (byte)'b': { var state = Pop(); Build(Peek(), state); break; }
                default:
                    throw Error($"opcode 0x{op:X2} ('{(op is >= 32 and < 127 ? (char)op : '?')}') is not allowed in a weights-only load");
            }
        }
    }

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Error($"truncated: needs {n} bytes, {_data.Length - _pos} remain");
        var s = new ReadOnlySpan<byte>(_data, _pos, n);
        _pos += n;
        return s;
    }

    private int CheckedLength(ulong n) => n > (ulong)(_data.Length - _pos) ? throw Error($"length {n} runs past the end of the pickle") : (int)n;

    private string ReadString(ulong n)
    {
        try { return new UTF8Encoding(false, true).GetString(Take(CheckedLength(n))); }
        catch (DecoderFallbackException) { throw Error("string is not valid UTF-8"); }
    }

    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos, Math.Min(256, _data.Length - _pos));
        if (end < 0) throw Error("GLOBAL name not terminated within 256 bytes");
        string s = Encoding.ASCII.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    private long ReadLong1()
    {
        int n = Take(1)[0];
        if (n > 8) throw Error($"integer of {n} bytes is too large");
        ReadOnlySpan<byte> b = Take(n);
        long v = 0;
        for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
        if (n is > 0 and < 8 && (b[n - 1] & 0x80) != 0) v -= 1L << (8 * n); // two's complement sign
        return v;
    }

    private void Push(object? v)
    {
        if (_stack.Count >= MaxStack) throw Error("stack too deep");
        _stack.Add(v);
    }

    private object? Pop()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _stack.Count <= _marks[^1])) throw Error("stack underflow");
        object? v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object? Peek() => _stack.Count == 0 ? throw Error("stack underflow") : _stack[^1];

    private List<object?> PopToMark()
    {
        if (_marks.Count == 0) throw Error("no MARK on the stack");
        int mark = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(mark, _stack.Count - mark);
        _stack.RemoveRange(mark, _stack.Count - mark);
        return items;
    }

    private void Memo(long key, object? value)
    {
        if (_memo.Count >= MaxMemo && !_memo.ContainsKey(key)) throw Error("memo too large");
        _memo[key] = value;
    }

    private object? Recall(long key) => _memo.TryGetValue(key, out var v) ? v : throw Error($"memo key {key} was never stored");

    private List<object?> AsList(object? o) => o as List<object?> ?? throw Error("APPEND to something that is not a list");

    private void SetItem(object? target, object? key, object? value)
    {
        if (target is not PickleDict d) throw Error("SETITEM on something that is not a dict");
        if (key is null or List<object?> or PickleDict) throw Error("unhashable dict key");
        d.Items.Add(new KeyValuePair<object, object?>(key, value));
    }

    private PickleGlobal Global(string module, string name)
    {
        bool allowed = (module, name) switch
        {
            ("collections", "OrderedDict") => true,
            ("torch._utils", "_rebuild_tensor_v2") => true,
            ("torch._utils", "_rebuild_parameter") => true,
            ("torch", _) when StorageTypes.ContainsKey(name) => true,
            _ => false,
        };
        if (!allowed) throw Error($"disallowed global '{module}.{name}': a weights-only load accepts only tensors, storages and (ordered) dicts");
        return new PickleGlobal(module, name);
    }

    private StorageRef PersistentLoad(object? pid)
    {
        if (pid is not PickleTuple { Items: [string tag, PickleGlobal type, string key, string location, long numel] } || tag != "storage")
            throw Error("persistent id is not ('storage', torch.<Type>Storage, key, location, numel)");
        if (type.Module != "torch" || !StorageTypes.TryGetValue(type.Name, out DType dtype)) throw Error($"'{type}' is not a storage type");
        if (numel < 0) throw Error($"storage '{key}' has negative size {numel}");
        if (key.Length == 0 || key.Length > 64 || key.Any(c => !char.IsAsciiLetterOrDigit(c) && c != '_')) throw Error($"storage key '{key}' is not a plain name");
        return new StorageRef(dtype, key, location, numel);
    }

    private object Reduce(object? fn, object? args)
    {
        if (fn is not PickleGlobal g) throw Error("REDUCE of something that is not an allowed callable");
        if (args is not PickleTuple t) throw Error($"REDUCE of {g} without an argument tuple");
        switch (g.Module, g.Name)
        {
            case ("collections", "OrderedDict"):
                if (t.Items.Length != 0) throw Error("OrderedDict(...) with arguments is not supported");
                return new PickleDict();
            case ("torch._utils", "_rebuild_tensor_v2"):
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if (t.Items.Length is < 6 or > 7 || t.Items[0] is not StorageRef storage || t.Items[1] is not long offset)
                    throw Error("_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, requires_grad, hooks)");
                long[] size = Dims(t.Items[2], "size"), stride = Dims(t.Items[3], "stride");
                if (size.Length != stride.Length) throw Error($"size has {size.Length} dims but stride has {stride.Length}");
                return new TensorRef(storage, offset, size, stride);
            case ("torch._utils", "_rebuild_parameter"):
                if (t.Items.Length != 3 || t.Items[0] is not TensorRef data) throw Error("_rebuild_parameter arguments are not (tensor, requires_grad, hooks)");
                return data;
            default:
                throw Error($"{g} cannot be called");
        }
    }

    private long[] Dims(object? o, string what)
    {
        if (o is not PickleTuple t || t.Items.Length > MaxDims) throw Error($"tensor {what} is not a tuple of at most {MaxDims} integers");
        var dims = new long[t.Items.Length];
        for (int i = 0; i < dims.Length; i++) dims[i] = t.Items[i] as long? ?? throw Error($"tensor {what} holds a non-integer");
        return dims;
    }

    private void Build(object? target, object? state)
    {
        // OrderedDict state dicts carry `_metadata` (module versions) as instance state: accepted and ignored.
        if (target is PickleDict && state is PickleDict or null) return;
        throw Error("BUILD is only allowed to set an OrderedDict's attributes");
    }
}
