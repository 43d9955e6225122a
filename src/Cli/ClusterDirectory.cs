using Storage.Core.Auth;
using Storage.Core.Rpc;

namespace Storage.Cli;

/// <summary>The paths of a local cluster under its state folder (.storage by default).</summary>
public sealed class ClusterDirectory(string root)
{
    public string Root { get; } = Path.GetFullPath(root);
    public string StateFile => Path.Combine(Root, "cluster.json");
    public string DataDir(SafekeeperEntry sk) => Path.Combine(Root, sk.Name);
    public string LogFile(IProcessEntry process) => Path.Combine(Root, "logs", process.Name + ".log");
    /// <summary>The control plane's data directory: its registry (state.bin) and the VMs' work directories.</summary>
    public string ControlPlaneDir => Path.Combine(Root, "controlplane");
    public string ControlPlaneState => Path.Combine(ControlPlaneDir, "state.bin");
    /// <summary>A VM's folder, as the control plane's pool lays it out: PostgreSQL data directory (a cache), postgres.pid, log.</summary>
    public string VmWorkDir(string vmId) => Path.Combine(ControlPlaneDir, "vms", vmId);
    public string DataDir(PageserverEntry ps) => Path.Combine(Root, ps.Name);
    /// <summary>The storage controller's state: nodes, placements, generations.</summary>
    public string ControllerDir => Path.Combine(Root, "controller");
    /// <summary>The object store (LocalFs): offloaded WAL, the pageserver's layers and manifests.</summary>
    public string RemoteStorage => Path.Combine(Root, "remote");
    public string TimelineDir(SafekeeperEntry sk, ClusterState state) => Path.Combine(DataDir(sk), state.TenantId, state.TimelineId);

    /// <summary>The cluster's signing key pair and its services' tokens (0600 files; made on first use).</summary>
    public ClusterSecrets Secrets => _secrets ??= ClusterSecrets.CreateOrOpen(Path.Combine(Root, "auth"));
    private ClusterSecrets? _secrets; // one instance: its lock keeps token files from being minted twice

    /// <summary>The recorded cluster, or null; storagectl calls the cluster's services as its admin.</summary>
    public ClusterState? TryLoad()
    {
        var state = ClusterState.Load(StateFile);
        if (state is not null) CallAsAdmin();
        return state;
    }

    private void CallAsAdmin() => GrpcChannels.DefaultToken = Secrets.Token(Scope.Admin, "storagectl");

    /// <summary>The recorded cluster; commands other than up need one.</summary>
    public ClusterState Load() => TryLoad() ?? throw new CliError($"no cluster in {Root}; run 'storagectl up' first");

    public void Save(ClusterState state)
    {
        Directory.CreateDirectory(Root);
        state.Save(StateFile);
        CallAsAdmin();
    }
}
