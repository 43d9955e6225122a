using Storage.ComputeProxy.ControlPlane;
using Storage.Core.Postgres;
using Storage.Core.Processes;

namespace Storage.Cli;

/// <summary>
/// The compute VMs of the local cluster: the control plane owns them; storagectl only finds them (for
/// chaos kills) and, when the proxy is gone, stops what it left running so `down` leaves nothing.
/// </summary>
public sealed class ControlPlaneVms(ClusterDirectory dir, ClusterState state)
{
    /// <summary>The VM serving <paramref name="endpointId"/> now, as the control plane reports it.</summary>
    public async Task<AdminApi.VmView> VmOfAsync(string endpointId)
    {
        using var admin = new AdminClient(state.RequiredProxy);
        var status = await admin.StatusAsync();
        var endpoint = status.Endpoints.FirstOrDefault(e => e.Id == endpointId)
            ?? throw new CliError($"no endpoint '{endpointId}'; endpoints: {string.Join(", ", status.Endpoints.Select(e => e.Id))}");
        return status.Vms.FirstOrDefault(v => v.Id == endpoint.VmId && endpoint.VmId is not null)
            ?? throw new CliError($"endpoint {endpointId} runs on no VM now ({endpoint.State})");
    }

    /// <summary>The processes of the VM serving <paramref name="endpointId"/>: its agent and, if running, its PostgreSQL.</summary>
    public async Task<VmProcesses> ProcessesOfAsync(string endpointId)
    {
        var vm = await VmOfAsync(endpointId);
        return new VmProcesses(vm.Id, vm.Pid, ClusterProcesses.PostmasterPid(dir.VmWorkDir(vm.Id)));
    }

    /// <summary>SIGKILL of the VM's agent and its PostgreSQL, like the machine dying; returns what was killed.</summary>
    public async Task<string> KillVmAsync(string endpointId)
    {
        var vm = await ProcessesOfAsync(endpointId);
        foreach (var pid in vm.Pids) await ServiceProcess.KillPidAsync(pid);
        return $"killed {vm.VmId} of endpoint {endpointId} ({vm.PidList})";
    }

    /// <summary>SIGKILL of the endpoint's PostgreSQL only; its agent restarts it.</summary>
    public async Task<string> KillPostgresAsync(string endpointId)
    {
        var vm = await ProcessesOfAsync(endpointId);
        if (vm.PostgresPid is not int pid) return $"no PostgreSQL runs on {vm.VmId} (endpoint {endpointId})";
        OsUser.Signal(pid, OsUser.SigKill);
        return $"killed PostgreSQL of endpoint {endpointId} on {vm.VmId} (pid {pid})";
    }

    /// <summary>
    /// Stops the VMs a dead proxy left running (its state.bin lists them): SIGTERM lets each agent
    /// stop its PostgreSQL, then its PostgreSQL is killed if it outlived the agent.
    /// </summary>
    public async Task StopOrphansAsync(TimeSpan grace)
    {
        if (!File.Exists(dir.ControlPlaneState)) return;
        var vms = new StateStore(dir.ControlPlaneState).Read(d => d.Vms.Values.ToList());
        await Task.WhenAll(vms.Where(v => VmPool.IsAgent(v.Pid)).Select(async v =>
        {
            await ServiceProcess.StopPidAsync(v.Pid, grace);
            if (ClusterProcesses.PostmasterPid(v.WorkDirectory) is int postgres) await ServiceProcess.KillPidAsync(postgres);
            Console.WriteLine($"stopped {v.Id} (pid {v.Pid}), left running by a dead proxy");
        }));
    }
}

/// <summary>A VM's agent and the PostgreSQL it runs (null when none runs).</summary>
public sealed record VmProcesses(string VmId, int AgentPid, int? PostgresPid)
{
    /// <summary>The agent, then PostgreSQL if it runs.</summary>
    public IEnumerable<int> Pids => PostgresPid is int postgres ? [AgentPid, postgres] : [AgentPid];

    /// <summary>"agent pid 12, PostgreSQL pid 34".</summary>
    public string PidList => $"agent pid {AgentPid}{(PostgresPid is int p ? $", PostgreSQL pid {p}" : "")}";

    public override string ToString() => $"{VmId} ({PidList})";
}
