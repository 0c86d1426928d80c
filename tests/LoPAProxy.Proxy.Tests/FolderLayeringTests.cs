using System.Reflection;
using System.Reflection.Emit;

namespace LoPAProxy.Proxy.Tests;

/// <summary>
/// Inside the proxy, folders (one namespace each) are layered too: a type may use types of its own folder and of
/// folders listed before it, never of one listed after. The uses are read from the compiled assembly — signatures,
/// fields, base types and every type, method and field token in the method bodies (lambdas and async state
/// machines count for the type they are written in) — so nothing a comment or a name says can fool it.
/// </summary>
public class FolderLayeringTests
{
    /// <summary>Lowest first: the request's path runs upward through these (docs/proxy.md, "How the code is laid
    /// out").</summary>
    private static readonly string[] Layers =
    [
        "Configuration", "Requests", "Models", "Observability", "Store", "Auth", "SoftPrompts", "Limits", "Tenancy",
        "Usage", "FineTuning", "Responses", "Dialects", "Inspection", "Pipeline", "WebConsole", "Hosting", "",
    ];

    private static readonly Assembly Proxy = typeof(ProxyApp).Assembly;
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    [Fact]
    public void Every_folder_is_a_known_layer()
    {
        string[] folders = Proxy.GetTypes().Select(Folder).OfType<string>().Distinct().ToArray();
        Assert.Empty(folders.Except(Layers));
        Assert.Contains("Dialects", folders); // the reading works
    }

    [Fact]
    public void No_folder_uses_one_above_it()
    {
        var upward = new SortedSet<string>(StringComparer.Ordinal);
        foreach (Type type in Proxy.GetTypes())
        {
            if (Folder(type) is not { } from) continue;
            foreach (Type used in Uses(type))
            {
                if (Folder(used) is { } to && Array.IndexOf(Layers, to) > Array.IndexOf(Layers, from))
                {
                    upward.Add($"{Outermost(type).FullName} ({Show(from)}) uses " +
                        $"{Outermost(used).FullName} ({Show(to)})");
                }
            }
        }
        Assert.True(upward.Count == 0, string.Join("\n", upward));
    }

    [Fact]
    public void The_check_sees_uses_inside_method_bodies()
    {
        // LoPAMiddleware resolves the dialect only inside a method body (an async state machine).
        Assert.Contains(typeof(Proxy.Dialects.IBackendDialect), Uses(typeof(Proxy.Pipeline.LoPAMiddleware)));
    }

    private static string Show(string folder) => folder.Length == 0 ? "root" : folder;

    private static Type Outermost(Type type)
    {
        while (type.DeclaringType is { } outer) type = outer;
        return type;
    }

    /// <summary>The folder of a proxy type ("" for the root namespace); null for a type from elsewhere.</summary>
    private static string? Folder(Type type)
    {
        type = Outermost(type);
        if (type.Assembly != Proxy || type.Namespace is null) return null;
        if (type.Namespace == "LoPAProxy.Proxy") return "";
        const string Prefix = "LoPAProxy.Proxy.";
        return type.Namespace.StartsWith(Prefix, StringComparison.Ordinal) ? type.Namespace[Prefix.Length..] : null;
    }

    /// <summary>Every type a type's own declarations and method bodies use (nested and generated types
    /// included).</summary>
    private static HashSet<Type> Uses(Type type)
    {
        var uses = new HashSet<Type>();
        const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance
            | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (Type t in new[] { type }.Concat(type.GetNestedTypes(All).SelectMany(Self)))
        {
            Add(uses, t.BaseType);
            foreach (Type i in t.GetInterfaces()) Add(uses, i);
            foreach (FieldInfo f in t.GetFields(All)) Add(uses, f.FieldType);
            foreach (PropertyInfo p in t.GetProperties(All)) Add(uses, p.PropertyType);
            foreach (MethodBase m in t.GetMethods(All).Cast<MethodBase>().Concat(t.GetConstructors(All)))
            {
                if (m is MethodInfo mi) Add(uses, mi.ReturnType);
                foreach (ParameterInfo p in m.GetParameters()) Add(uses, p.ParameterType);
                BodyUses(m, uses);
            }
        }
        return uses;
    }

    private static IEnumerable<Type> Self(Type t) =>
        new[] { t }.Concat(t.GetNestedTypes(BindingFlags.Public | BindingFlags.NonPublic).SelectMany(Self));

    private static void Add(HashSet<Type> uses, Type? type)
    {
        if (type is null) return;
        if (type.HasElementType)
        {
            Add(uses, type.GetElementType());
            return;
        }
        if (!uses.Add(type) || !type.IsGenericType) return;
        foreach (Type argument in type.GetGenericArguments()) Add(uses, argument);
    }

    /// <summary>The types, and the declaring types of the methods and fields, that a method's IL refers to.</summary>
    private static void BodyUses(MethodBase method, HashSet<Type> uses)
    {
        byte[]? il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null) return;
        Module module = method.Module;
        Type[]? typeArgs = method.DeclaringType is { IsGenericType: true } d ? d.GetGenericArguments() : null;
        Type[]? methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (int i = 0; i < il.Length;)
        {
            short value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            OpCode op = OpCodesByValue[value];
            i += op.Size;
            int token = op.OperandType is OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType
                or OperandType.InlineTok ? BitConverter.ToInt32(il, i) : 0;
            if (token != 0)
            {
                try
                {
                    MemberInfo? member = module.ResolveMember(token, typeArgs, methodArgs);
                    Add(uses, member as Type ?? member?.DeclaringType);
                    if (member is MethodInfo called) Add(uses, called.ReturnType);
                }
                catch (ArgumentException)
                {
                    // A token that needs generic context this reading does not have: not a proxy type.
                }
            }
            i += OperandSize(op, il, i);
        }
    }

    private static int OperandSize(OpCode op, byte[] il, int at) => op.OperandType switch
    {
        OperandType.InlineNone => 0,
        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
        OperandType.InlineVar => 2,
        OperandType.InlineI8 or OperandType.InlineR => 8,
        OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, at),
        _ => 4,
    };
}
