using System.Text.RegularExpressions;

namespace Storage.ComputeProxy.Proxy;

/// <summary>Where a connection goes, and the startup packet to forward (without the proxy's own options).</summary>
public sealed record Route(string EndpointId, string Source, StartupPacket.Startup Forward);

/// <summary>
/// Picks the endpoint of a connection as Neon does: <c>endpoint=&lt;id&gt;</c> in the startup
/// <c>options</c> (also written <c>-c endpoint=&lt;id&gt;</c> or <c>--endpoint=&lt;id&gt;</c>) wins,
/// then the first label of the TLS SNI host name, then the configured default.
/// </summary>
public sealed partial class EndpointRouter(string? defaultEndpoint, string? sniDomain)
{
    private const string Name = "endpoint";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")]
    private static partial Regex EndpointIdPattern();

    public Route Route(StartupPacket.Startup startup, string? sniHostName)
    {
        var (fromOptions, forward) = TakeFromOptions(startup);
        var (endpoint, source) =
            fromOptions != null ? (fromOptions, "options")
            : FromSni(sniHostName) is { } fromSni ? (fromSni, "sni")
            : defaultEndpoint != null ? (defaultEndpoint, "default")
            : throw new ProxyRejectException(SqlStates.RejectedEstablishment, "no_endpoint",
                "no endpoint specified",
                "Name the endpoint in the connection options, e.g. options=endpoint=main or PGOPTIONS='endpoint=main'.");
        if (!EndpointIdPattern().IsMatch(endpoint))
            throw new ProxyRejectException(SqlStates.RejectedEstablishment, "no_endpoint", $"invalid endpoint id \"{endpoint}\"");
        return new Route(endpoint, source, forward);
    }

    /// <summary>The endpoint named in <c>options</c> and the startup packet with those words removed.</summary>
    private static (string? Endpoint, StartupPacket.Startup Forward) TakeFromOptions(StartupPacket.Startup startup)
    {
        var options = startup.Get("options");
        if (options == null) return (null, startup);

        var kept = new List<StartupOptions.Token>();
        string? endpoint = null;
        var tokens = StartupOptions.Split(options);
        for (int i = 0; i < tokens.Count; i++)
        {
            string word = tokens[i].Value;
            string? value =
                word == "-c" && i + 1 < tokens.Count && ValueOf(tokens[i + 1].Value) is { } next ? Skip(ref i, next)
                : word.StartsWith("--", StringComparison.Ordinal) ? ValueOf(word[2..])
                : word.StartsWith("-c", StringComparison.Ordinal) ? ValueOf(word[2..])
                : ValueOf(word);
            if (value == null) { kept.Add(tokens[i]); continue; }
            if (endpoint != null && endpoint != value)
                throw new ProxyRejectException(SqlStates.RejectedEstablishment, "no_endpoint",
                    $"the connection options name two endpoints, \"{endpoint}\" and \"{value}\"");
            endpoint = value;
        }

        var parameters = startup.Parameters.Where(p => p.Key != "options").ToList();
        if (kept.Count > 0)
        {
            int at = startup.Parameters.ToList().FindIndex(p => p.Key == "options");
            parameters.Insert(at, new("options", StartupOptions.Join(kept)));
        }
        return (endpoint, startup with { Parameters = parameters });
    }

    private static string? Skip(ref int i, string value) { i++; return value; }

    /// <summary>The id in <c>endpoint=&lt;id&gt;</c>, or null for any other word.</summary>
    private static string? ValueOf(string word) =>
        word.StartsWith(Name + "=", StringComparison.Ordinal) ? word[(Name.Length + 1)..] : null;

    /// <summary>The first label of the SNI name, for a name under the configured domain (any name of two labels or more when none is configured).</summary>
    private string? FromSni(string? host)
    {
        if (string.IsNullOrEmpty(host)) return null;
        int dot = host.IndexOf('.');
        if (dot <= 0) return null;
        if (sniDomain != null && !host[(dot + 1)..].Equals(sniDomain.Trim('.'), StringComparison.OrdinalIgnoreCase)) return null;
        return host[..dot].ToLowerInvariant();
    }
}
