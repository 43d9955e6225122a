using System.CommandLine;
using System.CommandLine.Help;
using System.Globalization;
using System.Net;
using System.Reflection;

namespace Storage.Core.Hosting;

/// <summary>Names a property of a service's options record as a command-line flag.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class FlagAttribute(string name, string description) : Attribute
{
    public string Name { get; } = name;
    public string Description { get; } = description;
}

/// <summary>
/// Marks a property whose value is a group of flags shared by several services (the object store,
/// say): its own <see cref="FlagAttribute"/> properties are flags of the service, as if declared
/// there. The property must be initialised (the group's defaults come from that instance).
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class FlagGroupAttribute : Attribute;

/// <summary>An options record that checks itself after binding (contradictory or out-of-range values).</summary>
public interface IValidatedOptions
{
    /// <summary>Every problem with the values, as sentences; empty when they are fine.</summary>
    IEnumerable<string> Validate();
}

/// <summary>
/// A service's typed options record, bound from its command line and turned back into one: every
/// public property with a <see cref="FlagAttribute"/> is a flag whose default is the record's own
/// initial value, so a default is written once, and the launchers that start a service build its
/// arguments from the same record (<see cref="ToArguments"/>). An unknown flag, a value that does
/// not parse and a failed <see cref="IValidatedOptions.Validate"/> are clear errors; <c>--help</c>
/// lists every flag with its default.
/// </summary>
public static class ServiceOptions
{
    /// <summary>The bound options, or the exit code when the process should stop (help shown: 0, errors: 2).</summary>
    public readonly record struct Outcome<T>(T? Options, int ExitCode);

    public static Outcome<T> Parse<T>(string[] args, string description, TextWriter? output = null, TextWriter? errors = null) where T : class, new()
    {
        output ??= Console.Out;
        errors ??= Console.Error;
        var defaults = new T();
        var flags = Flags(typeof(T)).Select(f => (Flag: f, Option: new Option<string>(f.Attribute.Name)
        {
            Description = f.Attribute.Description,
            DefaultValueFactory = _ => Format(f.Get(defaults)),
        })).ToList();
        var root = new RootCommand(description);
        foreach (var (_, option) in flags) root.Options.Add(option);
        var result = root.Parse(args);
        if (result.Action is HelpAction)
        {
            result.Invoke(new InvocationConfiguration { Output = output, Error = errors });
            return new(null, 0);
        }
        var problems = result.Errors.Select(e => e.Message).ToList();
        var options = new T();
        foreach (var (flag, option) in flags)
        {
            if (result.GetResult(option) is not { Implicit: false }) continue; // not given: the default stays
            var text = result.GetValue(option) ?? "";
            try { flag.Set(options, Convert(text, flag.Type)); }
            catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
            {
                problems.Add($"{option.Name}: '{text}' is not a valid {Describe(flag.Type)} ({e.Message})");
            }
        }
        if (problems.Count == 0 && options is IValidatedOptions validated) problems.AddRange(validated.Validate());
        if (problems.Count == 0) return new(options, 0);
        foreach (var problem in problems) errors.WriteLine(problem);
        errors.WriteLine($"(--help lists the options)");
        return new(null, 2);
    }

    /// <summary>The command line that gives <paramref name="options"/>: every flag whose value differs from the default.</summary>
    public static string[] ToArguments<T>(T options) where T : class, new()
    {
        var defaults = new T();
        var args = new List<string>();
        foreach (var flag in Flags(typeof(T)))
        {
            var value = Format(flag.Get(options));
            if (value == Format(flag.Get(defaults))) continue;
            args.Add(flag.Attribute.Name);
            args.Add(value);
        }
        return args.ToArray();
    }

    /// <summary>One flag: how to read and set its value on the options object (through its group, if any).</summary>
    private sealed record Flag(FlagAttribute Attribute, Type Type, Func<object, object?> Get, Action<object, object?> Set);

    private static IEnumerable<Flag> Flags(Type type)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetCustomAttribute<FlagAttribute>() is { } attribute)
                yield return new Flag(attribute, property.PropertyType, property.GetValue, property.SetValue);
            else if (property.GetCustomAttribute<FlagGroupAttribute>() is not null)
                foreach (var inner in Flags(property.PropertyType))
                    yield return inner with
                    {
                        Get = o => inner.Get(property.GetValue(o)!),
                        Set = (o, v) => inner.Set(property.GetValue(o)!, v),
                    };
        }
    }

    private static string Format(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        IPEndPoint e => e.ToString(),
        Uri u => u.ToString(),
        IEnumerable<Uri> uris => string.Join(',', uris),
        IEnumerable<string> strings => string.Join(',', strings),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static object? Convert(string text, Type type)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        if (target == typeof(string)) return text;
        if (text.Length == 0 && (type != target || !type.IsValueType)) return null;
        if (target == typeof(bool)) return bool.Parse(text);
        if (target == typeof(int)) return int.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture);
        if (target == typeof(long)) return long.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture);
        if (target == typeof(ulong)) return ulong.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture);
        if (target == typeof(double)) return double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
        if (target == typeof(IPEndPoint)) return IPEndPoint.Parse(text);
        if (target == typeof(Uri)) return ParseUri(text);
        if (target == typeof(IReadOnlyList<Uri>)) return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ParseUri).ToList();
        if (target == typeof(IReadOnlyList<string>)) return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        if (target.IsEnum) return Enum.Parse(target, text, ignoreCase: true);
        throw new ArgumentException($"no parser for {target.Name}");
    }

    private static Uri ParseUri(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) ? uri : throw new FormatException($"'{text}' is not an absolute URI");

    private static string Describe(Type type) => (Nullable.GetUnderlyingType(type) ?? type) switch
    {
        var t when t == typeof(IPEndPoint) => "HOST:PORT address",
        var t when t == typeof(IReadOnlyList<Uri>) => "comma-separated list of URIs",
        var t when t == typeof(IReadOnlyList<string>) => "comma-separated list",
        var t => t.Name.ToLowerInvariant(),
    };
}
