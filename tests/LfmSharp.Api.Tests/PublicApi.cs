using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;

namespace LfmSharp.Api.Tests;

/// <summary>
/// The public surface of an assembly as text, one line per type and member, sorted, so that a change to it is a
/// reviewable diff of api/&lt;Assembly&gt;.txt. Reflection over what the compiler emitted: exported types and their
/// public and protected members (a protected member is API as soon as the type can be derived from).
/// </summary>
internal static class PublicApi
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance |
                                          BindingFlags.Static | BindingFlags.DeclaredOnly;

    public static string Describe(Assembly assembly)
    {
        var lines = new List<string>();
        foreach (var type in assembly.GetExportedTypes())
        {
            string name = TypeName(type, full: true);
            lines.Add($"{name}: {TypeHeader(type)}");
            foreach (var member in type.GetMembers(Declared))
            {
                string? text = Member(type, member);
                if (text is not null)
                    lines.Add($"{name}.{text}");
            }
        }
        lines.Sort(StringComparer.Ordinal);
        var sb = new StringBuilder();
        foreach (var line in lines.Distinct())
            sb.Append(line).Append('\n');
        return sb.ToString();
    }

    private static string TypeHeader(Type t)
    {
        string kind = t.IsEnum ? "enum" : t.IsInterface ? "interface" : t.IsValueType ? "struct"
            : typeof(Delegate).IsAssignableFrom(t) ? "delegate" : "class";
        var mods = new List<string>();
        if (t.IsClass && t.IsAbstract && t.IsSealed) mods.Add("static");
        else if (t.IsClass && t.IsAbstract && !t.IsInterface) mods.Add("abstract");
        else if (t.IsClass && t.IsSealed && kind == "class") mods.Add("sealed");
        if (t.IsValueType && t.IsDefined(typeof(IsReadOnlyAttribute), false)) mods.Add("readonly");
        if (t.IsDefined(typeof(IsByRefLikeAttribute), false)) mods.Add("ref");
        if (t.GetMethod("<Clone>$") is not null || (t.IsValueType && t.GetMethod("PrintMembers", Declared) is not null)) mods.Add("record");
        mods.Add(kind);
        var bases = new List<string>();
        if (t.IsEnum) bases.Add(TypeName(Enum.GetUnderlyingType(t)));
        else if (t.BaseType is { } b && b != typeof(object) && b != typeof(ValueType)) bases.Add(TypeName(b));
        foreach (var i in t.GetInterfaces().Where(i => i.IsPublic || i.IsNestedPublic).Select(i => TypeName(i)).Order(StringComparer.Ordinal))
            bases.Add(i);
        return string.Join(' ', mods) + (bases.Count > 0 ? " : " + string.Join(", ", bases) : "");
    }

    private static bool Visible(MethodBase? m) => m is not null && (m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly);

    private static string? Member(Type owner, MemberInfo member)
    {
        switch (member)
        {
            case ConstructorInfo c when Visible(c) && !c.IsStatic:
                return $".ctor({Parameters(c.GetParameters())})";
            case MethodInfo m when Visible(m) && (!m.IsSpecialName || m.Name.StartsWith("op_", StringComparison.Ordinal)):
                if (m.Name.StartsWith('<')) return null; // compiler-generated (record Clone)
                string generic = m.IsGenericMethodDefinition ? "<" + string.Join(", ", m.GetGenericArguments().Select(a => a.Name)) + ">" : "";
                return $"{Modifiers(m)}{TypeName(m.ReturnType)} {m.Name}{generic}({Parameters(m.GetParameters())})";
            case PropertyInfo p:
                var get = p.GetMethod; var set = p.SetMethod;
                if (!Visible(get) && !Visible(set)) return null;
                var accessors = new List<string>();
                if (Visible(get)) accessors.Add("get;");
                if (Visible(set))
                    accessors.Add(set!.ReturnParameter.GetRequiredCustomModifiers().Contains(typeof(IsExternalInit)) ? "init;" : "set;");
                string index = p.GetIndexParameters().Length > 0 ? $"this[{Parameters(p.GetIndexParameters())}]" : p.Name;
                return $"{Modifiers((Visible(get) ? get : set)!)}{TypeName(p.PropertyType)} {index} {{ {string.Join(' ', accessors)} }}";
            case FieldInfo f when (f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly) && !f.IsSpecialName:
                if (owner.IsEnum) return $"{f.Name} = {Convert.ToUInt64(f.GetRawConstantValue()!, System.Globalization.CultureInfo.InvariantCulture)}";
                string kind = f.IsLiteral ? "const " : (f.IsStatic ? "static " : "") + (f.IsInitOnly ? "readonly " : "");
                string value = f.IsLiteral ? " = " + Literal(f.GetRawConstantValue()) : "";
                return $"{(f.IsFamily ? "protected " : "")}{kind}{TypeName(f.FieldType)} {f.Name}{value}";
            case EventInfo e when Visible(e.AddMethod):
                return $"{Modifiers(e.AddMethod!)}event {TypeName(e.EventHandlerType!)} {e.Name}";
            default:
                return null; // nested types are listed on their own line
        }
    }

    private static string Modifiers(MethodInfo m)
    {
        var sb = new StringBuilder();
        if (m.IsFamily || m.IsFamilyOrAssembly) sb.Append("protected ");
        if (m.IsStatic) sb.Append("static ");
        else if (m.IsAbstract && !m.DeclaringType!.IsInterface) sb.Append("abstract ");
        else if (m.IsVirtual && !m.IsFinal && m.GetBaseDefinition() == m && !m.DeclaringType!.IsInterface) sb.Append("virtual ");
        else if (m.IsVirtual && m.GetBaseDefinition() != m) sb.Append("override ");
        return sb.ToString();
    }

    private static string Parameters(ParameterInfo[] ps) => string.Join(", ", ps.Select(p =>
    {
        string prefix = p.ParameterType.IsByRef ? (p.IsOut ? "out " : p.IsIn ? "in " : "ref ") : "";
        if (p.IsDefined(typeof(ParamArrayAttribute), false)) prefix = "params ";
        string optional = !p.HasDefaultValue ? ""
            : p.RawDefaultValue is null && p.ParameterType.IsValueType && Nullable.GetUnderlyingType(p.ParameterType) is null ? " = default"
            : " = " + Literal(p.RawDefaultValue);
        return $"{prefix}{TypeName(p.ParameterType)} {p.Name}{optional}";
    }));

    private static string Literal(object? value) => value switch
    {
        null => "null",
        string s => "\"" + s + "\"",
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string TypeName(Type t, bool full = false)
    {
        if (t.IsByRef || t.IsPointer) return TypeName(t.GetElementType()!, full) + (t.IsPointer ? "*" : "");
        if (t.IsArray) return TypeName(t.GetElementType()!, full) + "[" + new string(',', t.GetArrayRank() - 1) + "]";
        if (t.IsGenericParameter) return t.Name;
        if (Nullable.GetUnderlyingType(t) is { } u) return TypeName(u, full) + "?";
        string name = t.Name;
        int tick = name.IndexOf('`', StringComparison.Ordinal);
        if (tick >= 0) name = name[..tick];
        if (t.IsNested) name = TypeName(t.DeclaringType!, full) + "." + name;
        else if (t.Namespace is { Length: > 0 } ns) name = ns + "." + name;
        if (t.IsGenericType)
        {
            // Only the arguments that belong to this type (not those of the type it is nested in).
            var args = t.GetGenericArguments();
            int inherited = t.IsNested ? t.DeclaringType!.GetGenericArguments().Length : 0;
            if (args.Length > inherited)
                name += "<" + string.Join(", ", args.Skip(inherited).Select(a => TypeName(a))) + ">";
        }
        return name;
    }
}
