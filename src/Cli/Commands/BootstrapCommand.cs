using System.CommandLine;
using Polly;
using Polly.Retry;
using Storage.ComputeProxy.ControlPlane;
using Storage.Core.Api;
using Storage.Core.Auth;
using Storage.Core.Rpc;
using Storage.Proto.Controller;
using Storage.Proto.Pageserver;

namespace Storage.Cli.Commands;

/// <summary>
/// `storagectl bootstrap`: gives a cluster that storagectl does not run (docker compose) a timeline
/// and an endpoint on it, through the storage controller and the control plane's admin API. Safe to
/// run again: an endpoint that exists is only reported. While the services come up it retries, for
/// a bounded time, whatever fails because one of them is not there yet.
/// </summary>
public static class BootstrapCommand
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(2);

    /// <param name="PasswordGiven">Whether --password was given (else the endpoint's is a random one).</param>
    private sealed record Settings(Uri Controller, Uri Admin, IReadOnlyList<Uri> Safekeepers, EndpointEntry Endpoint, bool PasswordGiven, string ProxyAddress, TimeSpan Wait);

    public static Command Create()
    {
        var controller = new Option<string>("--controller") { Description = "the storage controller's gRPC address, like http://controller:1234", Required = true };
        var admin = new Option<string>("--admin") { Description = "the control plane's admin API, like http://proxy:7000", Required = true };
        var safekeepers = new Option<string>("--safekeepers") { Description = "the safekeepers' gRPC addresses, comma separated (the new timeline's WAL goes to them)", Required = true };
        var endpoint = new Option<string>("--endpoint") { Description = "the endpoint to make sure of", DefaultValueFactory = _ => "main" };
        var role = new Option<string>("--role") { Description = "the PostgreSQL role of a new endpoint", DefaultValueFactory = _ => "app" };
        var password = new Option<string?>("--password") { Description = "the role's password for a new endpoint (default: a random one)" };
        var proxyAddress = new Option<string>("--proxy-address")
            { Description = "HOST:PORT where clients reach the proxy, for the printed connection string", DefaultValueFactory = _ => "localhost:55432" };
        var tokenFile = new Option<string>("--token-file") { Description = "the admin token (0600 file) the calls to the cluster carry", Required = true };
        var wait = new Option<int>("--wait-seconds") { Description = "how long each step waits for the service it needs to come up", DefaultValueFactory = _ => 180 };
        var command = new Command("bootstrap",
            "make sure a cluster (docker compose) has an endpoint: if missing, create a timeline through the storage controller and the endpoint on it; print its connection string")
            { controller, admin, safekeepers, endpoint, role, password, proxyAddress, tokenFile, wait };
        command.SetAction((result, ct) => CliRunner.RunAsync(() => RunAsync(result.GetValue(tokenFile)!, new Settings(
            ParseUri(result.GetValue(controller)!, "--controller"),
            ParseUri(result.GetValue(admin)!, "--admin"),
            result.GetValue(safekeepers)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => ParseUri(s, "--safekeepers")).ToList(),
            new EndpointEntry { Id = result.GetValue(endpoint)!, RoleName = result.GetValue(role)!, Password = result.GetValue(password) ?? ClusterState.NewPassword() },
            result.GetValue(password) is not null,
            result.GetValue(proxyAddress)!,
            TimeSpan.FromSeconds(Math.Max(0, result.GetValue(wait)))), ct)));
        return command;
    }

    private static async Task<int> RunAsync(string tokenFile, Settings settings, CancellationToken ct)
    {
        GrpcChannels.DefaultToken = SecretFile.Read(tokenFile);
        if (settings.Safekeepers.Count == 0) throw new CliError("--safekeepers: give at least one safekeeper address");
        var retry = Retry(settings.Wait);
        using var admin = new AdminClient(settings.Admin);

        var id = settings.Endpoint.Id;
        Console.Error.WriteLine($"looking for endpoint {id} at the control plane {settings.Admin}");
        if (await retry.ExecuteAsync(async t => await admin.FindEndpointAsync(id, t), ct) is { } existing)
        {
            Console.Error.WriteLine($"endpoint {id} already exists (tenant {existing.TenantId} timeline {existing.TimelineId}, {existing.State}): nothing to create");
            // The admin API never shows a password: the one given is printed (compose always gives it), else none.
            if (!settings.PasswordGiven) Console.Error.WriteLine("its role keeps the password it was created with; give --password to print it in the connection string");
            PrintConnectionString(new EndpointEntry { Id = id, RoleName = existing.RoleName, Password = settings.PasswordGiven ? settings.Endpoint.Password : "" }, settings.ProxyAddress);
            return 0;
        }

        var (tenantId, timelineId) = (TimelineIds.New(), TimelineIds.New());
        Console.Error.WriteLine($"creating timeline tenant {tenantId} timeline {timelineId} through the storage controller {settings.Controller} (initdb on the pageserver it picks)");
        var placement = await retry.ExecuteAsync(t => new ValueTask<TimelinePlacement>(CreateTimelineAsync(settings, tenantId, timelineId, t)), ct);
        var secondary = placement.SecondaryNode is { Length: > 0 } s ? s : "none yet";
        Console.Error.WriteLine($"created the timeline: attached to {placement.AttachedNode} ({placement.AttachedAddress}), secondary {secondary}");

        await retry.ExecuteAsync(async t => await admin.CreateEndpointAsync(new AdminApi.CreateEndpointBody(
            id, tenantId, timelineId, settings.Endpoint.RoleName, settings.Endpoint.Password, null, null), t), ct);
        Console.Error.WriteLine($"created endpoint {id} on that timeline; the first connection wakes it");
        PrintConnectionString(settings.Endpoint, settings.ProxyAddress);
        return 0;
    }

    /// <summary>The controller places the timeline and creates it on the attached pageserver, which tells the safekeepers.</summary>
    private static async Task<TimelinePlacement> CreateTimelineAsync(Settings settings, string tenantId, string timelineId, CancellationToken ct)
    {
        var request = new CreateTimelineRequest { Timeline = PageserverClient.Id(tenantId, timelineId) };
        request.Safekeepers.AddRange(settings.Safekeepers.Select(s => s.ToString()));
        try { return await ControllerClient.CreateTimelineAsync(settings.Controller, request, ct); }
        catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.AlreadyExists)
        {
            // An earlier attempt whose answer was lost placed it (the controller creates one at a time, so it is done).
            return await ControllerClient.GetPlacementAsync(settings.Controller, tenantId, timelineId, ct: ct);
        }
    }

    /// <summary>On a line of its own on stdout, for people and scripts alike; it names the endpoint, so it works whatever the proxy's default is.</summary>
    private static void PrintConnectionString(EndpointEntry endpoint, string proxyAddress) =>
        Console.WriteLine(ClusterState.ProxyConnectionString(endpoint, proxyAddress, endpointOption: true));

    /// <summary>Retries, every two seconds for at most <paramref name="wait"/>, the failures of a service that is still starting.</summary>
    private static ResiliencePipeline Retry(TimeSpan wait)
    {
        var attempts = Math.Max(1, (int)(wait / RetryDelay));
        return new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } e && IsStarting(e)),
            MaxRetryAttempts = attempts,
            BackoffType = DelayBackoffType.Constant,
            Delay = RetryDelay,
            OnRetry = args =>
            {
                Console.Error.WriteLine($"not ready yet ({args.Outcome.Exception?.Message}); retry {args.AttemptNumber + 1} of {attempts} in {RetryDelay.TotalSeconds:0} s");
                return ValueTask.CompletedTask;
            },
        }).Build();
    }

    /// <summary>
    /// What a starting cluster answers: the controller unreachable or without an online pageserver
    /// (Unavailable), a call that timed out, the control plane's admin API unreachable.
    /// </summary>
    private static bool IsStarting(Exception e) => e switch
    {
        Grpc.Core.RpcException rpc => rpc.StatusCode is Grpc.Core.StatusCode.Unavailable or Grpc.Core.StatusCode.DeadlineExceeded,
        CliError { InnerException: HttpRequestException or TaskCanceledException } => true,
        _ => false,
    };

    private static Uri ParseUri(string text, string option) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new CliError($"{option}: '{text}' is not an http:// address");
}
