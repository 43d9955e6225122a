using System.Text.RegularExpressions;
using Storage.Core.Api;
using Storage.Core.Errors;
using Storage.Proto.Compute;

namespace Storage.Compute;

/// <summary>Checks of the control API's requests.</summary>
internal sealed partial class ComputeAgent
{
    private static (string Tenant, string Timeline, IReadOnlyList<Uri> Pageservers) Validate(PrepareRequest request)
    {
        try
        {
            return (TimelineIds.Normalize(request.TenantId, "tenant_id"), TimelineIds.Normalize(request.TimelineId, "timeline_id"), PageserverUris(request.Pageservers));
        }
        catch (ArgumentException e)
        {
            throw new InvalidRequestException(e.Message, e);
        }
    }

    private static (string Tenant, string Timeline, IReadOnlyList<Uri> Safekeepers, IReadOnlyList<Uri> Pageservers) Validate(AttachRequest request)
    {
        try
        {
            var tenant = TimelineIds.Normalize(request.TenantId, "tenant_id");
            var timeline = TimelineIds.Normalize(request.TimelineId, "timeline_id");
            if (request.Safekeepers.Count == 0) throw new ArgumentException("at least one safekeeper address is needed");
            var safekeepers = request.Safekeepers.Select(s => Uri.TryCreate(s, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"
                ? u : throw new ArgumentException($"safekeeper address '{s}' is not an http:// URI")).ToList();
            if (request.Endpoint is null) throw new ArgumentException("endpoint settings are missing");
            if (!RoleName().IsMatch(request.Endpoint.RoleName)) throw new ArgumentException($"role name '{request.Endpoint.RoleName}' must match {RoleName()}");
            if (string.IsNullOrEmpty(request.Endpoint.RolePassword)) throw new ArgumentException("the endpoint role needs a password");
            return (tenant, timeline, safekeepers, PageserverUris(request.Pageservers));
        }
        catch (ArgumentException e)
        {
            throw new InvalidRequestException(e.Message, e);
        }
    }

    private static List<Uri> PageserverUris(IReadOnlyList<string> addresses)
    {
        if (addresses.Count == 0) throw new ArgumentException("at least one pageserver address is needed (basebackups come from it)");
        return addresses.Select(s => Uri.TryCreate(s, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"
            ? u : throw new ArgumentException($"pageserver address '{s}' is not an http:// URI")).ToList();
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex RoleName();
}
