using Microsoft.Extensions.Logging;
using Storage.Core.Postgres;
using Storage.Core.Processes;
using Storage.Proto.Compute;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>
/// Compute agent processes on this machine, started detached so they outlive a control plane
/// restart. Their PIDs and ports are persisted (state.bin) so the next control plane adopts the ones
/// still running. A dead one is fenced - SIGKILL of the agent and of its PostgreSQL - and its
/// directories deleted.
/// </summary>
public sealed class ProcessVmProvider(ControlPlaneOptions options, StateStore store, ILogger log) : IVmProvider
{
    private string VmsDirectory => Path.Combine(options.DataDirectory, "vms");

    public int PoolSize => options.PoolSize;

    public Task<IReadOnlyList<Vm>> RecordedAsync(CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<Vm>>(store.Read(d => d.Vms.Values.Select(r => new Vm(r)).ToList()));

    public bool MayBeAlive(Vm vm) => VmPool.IsAgent(vm.Pid);

    public async Task<Vm?> StartAsync(IReadOnlyCollection<Vm> members, CancellationToken ct)
    {
        var id = "vm" + store.Update(d => d.NextVmNumber++);
        int grpc = ServiceProcess.FreePort(), http = ServiceProcess.FreePort(), postgres = ServiceProcess.FreePort();
        var work = Path.Combine(VmsDirectory, id);
        // Detached: a VM outlives a control plane restart, and the next one adopts it. It is recorded
        // the moment it exists, so a control plane that dies before it is ready leaves no VM nobody
        // knows of (the next one adopts or fences it).
        VmRecord Record(int pid) => new(id, grpc, http, postgres, work, pid);
        ServiceProcess process;
        try
        {
            process = await ServiceProcess.StartAsync(options.ComputeAssembly ?? ComputeCommand.Assembly,
                [.. ComputeCommand.Arguments(id, grpc, http, work, postgres), .. options.PublicKeyFile is { } key ? ["--auth-public-key", key] : Array.Empty<string>()], work + ".log", detached: true, options.VmStartTimeout, ct,
                started: pid => store.Update(d => d.Vms[id] = Record(pid)));
        }
        catch
        {
            store.Update(d => d.Vms.Remove(id)); // it was killed
            throw;
        }
        log.LogInformation("started VM {VmId} (pid {Pid}): agent 127.0.0.1:{GrpcPort}, PostgreSQL port {PostgresPort}", id, process.Pid, grpc, postgres);
        return new Vm(Record(process.Pid)) { AgentState = ComputeState.Idle };
    }

    /// <summary>SIGTERM lets the agent stop its PostgreSQL cleanly (its last WAL committed), SIGKILL after <paramref name="grace"/>.</summary>
    public async Task StopAsync(Vm vm, TimeSpan grace)
    {
        if (VmPool.IsAgent(vm.Pid)) await ServiceProcess.StopPidAsync(vm.Pid, grace);
    }

    /// <summary>SIGKILL of the agent and its PostgreSQL, so a compute nobody supervises cannot serve stale reads; then its files go.</summary>
    /// <param name="cacheLater">
    /// Delete PostgreSQL's directory (a cache of a few hundred MB, outside the work directory when the
    /// postgres user cannot reach that) only after a pause: a death is followed at once by the
    /// reattach of its endpoint, which should have the cores to itself.
    /// </param>
    public async Task FenceAsync(Vm vm, bool cacheLater = false)
    {
        var postgresDirectory = OsUser.ReachableDirectory(vm.Record.WorkDirectory, vm.Id);
        if (VmPool.IsAgent(vm.Pid)) await ServiceProcess.KillPidAsync(vm.Pid);
        await KillPostgresAsync(vm);
        store.Update(d => d.Vms.Remove(vm.Id));
        vm.Dispose();
        DeleteQuietly(vm.Record.WorkDirectory);
        if (postgresDirectory == vm.Record.WorkDirectory) return;
        // A killed agent never wipes it, and the next VM gets a new id: without this, every death left its data directory behind.
        if (!cacheLater)
        {
            DeleteQuietly(postgresDirectory);
            return;
        }
        lock (_pendingCaches) _pendingCaches.Add(postgresDirectory);
        _ = Task.Delay(CacheDeleteDelay).ContinueWith(_ => DeletePendingCache(postgresDirectory), TaskScheduler.Default);
    }

    private static readonly TimeSpan CacheDeleteDelay = TimeSpan.FromSeconds(10);
    /// <summary>Caches of dead VMs waiting for <see cref="CacheDeleteDelay"/>; a stop deletes them at once.</summary>
    private readonly HashSet<string> _pendingCaches = [];

    public void DeletePendingCaches()
    {
        string[] pending;
        lock (_pendingCaches) pending = [.. _pendingCaches];
        foreach (var directory in pending) DeletePendingCache(directory);
    }

    private void DeletePendingCache(string directory)
    {
        lock (_pendingCaches) if (!_pendingCaches.Remove(directory)) return;
        DeleteQuietly(directory);
    }

    private static void DeleteQuietly(string directory)
    {
        try { Directory.Delete(directory, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // a cache; the next VM gets a new directory
    }

    /// <summary>Every process of the VM's PostgreSQL goes, backends included: none may answer an old connection.</summary>
    private static async Task KillPostgresAsync(Vm vm)
    {
        if (vm.Postmaster is { } postmaster) await postmaster.KillAllAsync();
    }
}
