using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Storage.Core.Auth;
using Storage.Core.Errors;
using Storage.Core.Hosting;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>
/// The admin HTTP API (JSON) on the host's HTTP endpoint: endpoints (create, list, get, attach,
/// detach, suspend, delete), VMs, status and /metrics. Every path but /metrics needs an admin-scoped
/// bearer token (401 without a valid one, 403 with another scope). Errors are <c>{"error": "..."}</c>
/// with 400 (bad input), 401, 403, 404 (unknown endpoint), 409 (conflict) or 503 (no VM could be
/// attached in time). Role passwords are write-only: no answer carries one.
/// </summary>
public static class AdminApi
{
    /// <summary>The body of POST /endpoints.</summary>
    public sealed record CreateEndpointBody(string? Id, string? TenantId, string? TimelineId, string? RoleName, string? RolePassword,
        Dictionary<string, string>? PostgresSettings, double? SuspendTimeoutSeconds);

    public sealed record EndpointView(string Id, string TenantId, string TimelineId, string RoleName,
        IReadOnlyDictionary<string, string> PostgresSettings, double SuspendTimeoutSeconds, string State, string? VmId, string? Host, int? Port, int Sessions);

    /// <param name="PreparedTimelineId">The timeline whose newest image an idle VM holds ready (null: none), ending at <paramref name="PreparedImageLsn"/>.</param>
    public sealed record VmView(string Id, string State, string AgentState, string? EndpointId, int Pid, int GrpcPort, int HttpPort, int PostgresPort, DateTime? LastHeartbeat,
        string? PreparedTimelineId = null, ulong PreparedImageLsn = 0);

    public sealed record StatusView(IReadOnlyList<EndpointView> Endpoints, IReadOnlyList<VmView> Vms);

    /// <summary>
    /// Maps the API, behind <paramref name="tokens"/>, and /metrics (the registry the control plane's
    /// metrics are in, open to scrapers as on every service) onto <paramref name="app"/>.
    /// </summary>
    public static void Map(WebApplication app, ControlPlane controlPlane, TokenValidator tokens)
    {
        app.Use((context, next) => context.Request.Path.StartsWithSegments("/metrics") ? next(context) : RequireAdminAsync(context, next, tokens));
        app.Use(async (context, next) =>
        {
            try { await next(context); }
            catch (Exception e) when (StatusOf(e) is int status && !context.Response.HasStarted)
            {
                context.Response.StatusCode = status;
                await context.Response.WriteAsJsonAsync(new { error = e.Message });
            }
        });
        MapRoutes(app, controlPlane);
        ServiceHost.MapMetrics(app, controlPlane.Metrics.Registry);
    }

    private static async Task RequireAdminAsync(HttpContext context, RequestDelegate next, TokenValidator tokens)
    {
        Caller caller;
        try { caller = await tokens.ValidateAsync(context.Request.Headers.Authorization); }
        catch (ServiceException e) when (e.Kind == FailureKind.Unauthenticated)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await context.Response.WriteAsJsonAsync(new { error = e.Message });
            return;
        }
        if (caller.Scope != Scope.Admin)
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            await context.Response.WriteAsJsonAsync(new { error = $"the admin API needs an admin token; this one is scoped '{ScopeNames.Name(caller.Scope)}'" });
            return;
        }
        await next(context);
    }

    private static int? StatusOf(Exception e) => e switch
    {
        UnknownEndpointException => StatusCodes.Status404NotFound,
        ConflictException => StatusCodes.Status409Conflict,
        ArgumentException or JsonException or BadHttpRequestException => StatusCodes.Status400BadRequest,
        TimeoutException => StatusCodes.Status503ServiceUnavailable,
        _ => null,
    };

    private static void MapRoutes(WebApplication app, ControlPlane controlPlane)
    {
        EndpointView View(EndpointRecord e) => EndpointViewOf(controlPlane, e);
        List<VmView> Vms() => VmViewsOf(controlPlane);
        var endpoints = controlPlane.Endpoints;
        var attacher = controlPlane.Attacher;

        app.MapGet("/endpoints", () => Results.Json(endpoints.List().Select(View)));
        app.MapPost("/endpoints", async (HttpRequest request) =>
        {
            var body = await request.ReadFromJsonAsync<CreateEndpointBody>(request.HttpContext.RequestAborted)
                ?? throw new ArgumentException("the body must be a JSON object");
            var created = endpoints.Create(new EndpointSpec(body.Id!, body.TenantId!, body.TimelineId!, body.RoleName, body.RolePassword,
                body.PostgresSettings, body.SuspendTimeoutSeconds is double s ? TimeSpan.FromSeconds(s) : null));
            return Results.Json(View(created), statusCode: StatusCodes.Status201Created);
        });
        app.MapGet("/endpoints/{id}", (string id) => Results.Json(View(endpoints.Get(id))));
        app.MapPost("/endpoints/{id}/attach", async (string id, HttpRequest request) =>
        {
            await controlPlane.Locator.LocateAsync(id, request.HttpContext.RequestAborted);
            return Results.Json(View(endpoints.Get(id)));
        });
        app.MapPost("/endpoints/{id}/detach", async (string id, HttpRequest request) =>
        {
            await attacher.DetachAsync(id, onlyIfIdle: false, request.HttpContext.RequestAborted);
            return Results.Json(View(endpoints.Get(id)));
        });
        app.MapPost("/endpoints/{id}/suspend", async (string id, HttpRequest request) =>
        {
            if (await attacher.DetachAsync(id, onlyIfIdle: false, request.HttpContext.RequestAborted)) controlPlane.Metrics.Suspends.Inc();
            return Results.Json(View(endpoints.Get(id)));
        });
        app.MapDelete("/endpoints/{id}", async (string id, HttpRequest request) =>
        {
            await attacher.DeleteAsync(id, request.HttpContext.RequestAborted);
            return Results.NoContent();
        });
        app.MapGet("/vms", () => Results.Json(Vms()));
        app.MapGet("/status", () => Results.Json(new StatusView(endpoints.List().Select(View).ToList(), Vms())));
    }

    private static EndpointView EndpointViewOf(ControlPlane controlPlane, EndpointRecord e)
    {
        var address = controlPlane.Attacher.CurrentAddress(e.Id);
        var attaching = controlPlane.Pool.Snapshot().Any(v => v.State == VmState.Attaching && v.EndpointId == e.Id);
        var state = address is not null ? "attached" : attaching ? "attaching" : "suspended";
        return new EndpointView(e.Id, e.TenantId, e.TimelineId, e.RoleName, e.PostgresSettings, e.SuspendTimeout.TotalSeconds,
            state, address?.VmId, address?.Host, address?.Port, controlPlane.Sessions.Sessions(e.Id));
    }

    private static List<VmView> VmViewsOf(ControlPlane controlPlane) => controlPlane.Pool.Snapshot().Select(v => new VmView(v.Id, v.State.ToString().ToLowerInvariant(),
        v.AgentState.ToString().ToUpperInvariant(), v.EndpointId, v.Pid, v.Record.GrpcPort, v.Record.HttpPort, v.Record.PostgresPort, v.LastHeartbeat,
        v.Prepared is { ImageLsn: > 0 } p ? p.TimelineId : null, v.Prepared?.ImageLsn ?? 0)).ToList();
}
