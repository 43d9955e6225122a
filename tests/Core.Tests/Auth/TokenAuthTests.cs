using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using Storage.Core.Auth;
using Storage.Core.Rpc;
using Storage.Core.Tests.Grpc;
using Storage.Proto.Test;

namespace Storage.Core.Tests.Auth;

/// <summary>Every gRPC call is authenticated by a signed token of an allowed scope, and a tenant's token stays in its tenant.</summary>
public class TokenAuthTests
{
    private static readonly string Tenant = new('a', 32), OtherTenant = new('b', 32);
    private readonly System.Security.Cryptography.ECDsa _key = SigningKey.Generate();

    private TokenIssuer Issuer(TimeProvider? time = null) => new(_key, time);

    private async Task<StatusCode> CallAsync(GrpcTestServer server, string? token, string text = "hi")
    {
        using var channel = GrpcChannels.Create(server.Address, token);
        try
        {
            await new Echo.EchoClient(channel).EchoAsync(new EchoRequest { Text = text }, deadline: GrpcTestServer.Deadline());
            return StatusCode.OK;
        }
        catch (RpcException e) { return e.StatusCode; }
    }

    [Fact]
    public async Task Only_a_valid_token_of_an_allowed_scope_gets_in_and_bad_ones_do_not_stop_good_callers()
    {
        await using var server = await GrpcTestServer.StartAsync(new TokenValidator(_key));
        var good = Issuer().Issue(Scope.Pageserver, "ps1", TimeSpan.FromHours(1));

        Assert.Equal(StatusCode.OK, await CallAsync(server, good));
        Assert.Equal(StatusCode.OK, await CallAsync(server, Issuer().Issue(Scope.Admin, "operator", TimeSpan.FromHours(1))));
        Assert.Equal(StatusCode.Unauthenticated, await CallAsync(server, null));
        Assert.Equal(StatusCode.Unauthenticated, await CallAsync(server, "garbage.not.a-token"));
        Assert.Equal(StatusCode.Unauthenticated, await CallAsync(server, new TokenIssuer(SigningKey.Generate()).Issue(Scope.Pageserver, "ps1", TimeSpan.FromHours(1))));
        var past = new FakeTimeProvider(DateTimeOffset.UtcNow.AddDays(-2));
        Assert.Equal(StatusCode.Unauthenticated, await CallAsync(server, Issuer(past).Issue(Scope.Pageserver, "ps1", TimeSpan.FromHours(1))));
        Assert.Equal(StatusCode.PermissionDenied, await CallAsync(server, Issuer().Issue(Scope.Controller, "controller", TimeSpan.FromHours(1))));
        Assert.Equal(StatusCode.OK, await CallAsync(server, good)); // still serving
    }

    [Fact]
    public async Task Refusals_say_which_check_failed()
    {
        await using var server = await GrpcTestServer.StartAsync(new TokenValidator(_key));
        async Task<string> DetailAsync(string? token)
        {
            using var channel = GrpcChannels.Create(server.Address, token);
            var e = await Assert.ThrowsAsync<RpcException>(async () => await new Echo.EchoClient(channel).EchoAsync(new EchoRequest(), deadline: GrpcTestServer.Deadline()));
            return e.Status.Detail;
        }
        Assert.Contains("no token", await DetailAsync(null));
        Assert.Contains("malformed", await DetailAsync("x"));
        Assert.Contains("signature", await DetailAsync(new TokenIssuer(SigningKey.Generate()).Issue(Scope.Pageserver, "ps1", TimeSpan.FromHours(1))));
        Assert.Contains("expired", await DetailAsync(Issuer(new FakeTimeProvider(DateTimeOffset.UtcNow.AddDays(-2))).Issue(Scope.Pageserver, "ps1", TimeSpan.FromHours(1))));
        Assert.Contains("may not call /storage.test.Echo/Echo", await DetailAsync(Issuer().Issue(Scope.Controller, "controller", TimeSpan.FromHours(1))));
    }

    [Fact]
    public async Task A_tenants_token_acts_only_on_its_tenant()
    {
        await using var server = await GrpcTestServer.StartAsync(new TokenValidator(_key));
        var compute = Issuer().Issue(Scope.Compute, "vm1", TimeSpan.FromHours(1), Tenant);
        Assert.Equal(StatusCode.OK, await CallAsync(server, compute, "tenant:" + Tenant));
        Assert.Equal(StatusCode.PermissionDenied, await CallAsync(server, compute, "tenant:" + OtherTenant));
        Assert.Equal(StatusCode.OK, await CallAsync(server, Issuer().Issue(Scope.Pageserver, "ps1", TimeSpan.FromHours(1)), "tenant:" + OtherTenant));
        Assert.Throws<ArgumentException>(() => Issuer().Issue(Scope.Compute, "vm1", TimeSpan.FromHours(1)));
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Secret_files_are_private_and_others_readable_ones_are_refused()
    {
        var dir = Directory.CreateTempSubdirectory("secrets-").FullName;
        try
        {
            var path = Path.Combine(dir, "signing-key.pem");
            SigningKey.WritePrivate(_key, path);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.NotNull(SigningKey.ReadPrivate(path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
            Assert.Throws<UnauthorizedAccessException>(() => SigningKey.ReadPrivate(path));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
