using Storage.ComputeProxy;
using Storage.ComputeProxy.ControlPlane;
using Storage.Core.Api;
using Storage.Core.Storage;

namespace Storage.ControlPlane.Tests;

/// <summary>The registry's file on its own (no processes).</summary>
public sealed class StateStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cp-state-").FullName;
    private string StatePath => Path.Combine(_dir, "state.bin");

    [Fact]
    public void Endpoints_survive_a_reopen_and_a_damaged_file_is_refused()
    {
        var registry = new EndpointRegistry(new StateStore(StatePath), TimeSpan.FromMinutes(5));
        var created = registry.Create(new EndpointSpec("main", TimelineIds.New(), TimelineIds.New(),
            PostgresSettings: new Dictionary<string, string> { ["work_mem"] = "8MB" }));
        registry.SetVm("main", "vm3");
        Assert.Equal(EndpointRegistry.DefaultRole, created.RoleName);
        Assert.Equal(TimeSpan.FromMinutes(5), created.SuspendTimeout);
        Assert.Throws<ConflictException>(() => registry.Create(new EndpointSpec("main", TimelineIds.New(), TimelineIds.New())));

        var reopened = new EndpointRegistry(new StateStore(StatePath), TimeSpan.FromMinutes(5)).Get("main");
        Assert.Equal(created.RolePassword, reopened.RolePassword);
        Assert.Equal("8MB", reopened.PostgresSettings["work_mem"]);
        Assert.Equal("vm3", reopened.VmId);
        Assert.Throws<UnknownEndpointException>(() => new EndpointRegistry(new StateStore(StatePath), TimeSpan.FromMinutes(5)).Get("other"));

        var bytes = File.ReadAllBytes(StatePath);
        bytes[bytes.Length / 2] ^= 0x20;
        File.WriteAllBytes(StatePath, bytes);
        Assert.Throws<CorruptFileException>(() => new StateStore(StatePath));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
