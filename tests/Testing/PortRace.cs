using Storage.Core.Processes;

namespace Storage.Testing;

/// <summary>
/// Test processes pick free ports before the service binds them, and test assemblies run side by
/// side: another process can take a port in between (seconds, on starved cores). A first start
/// that fails so is run again on newly picked ports; a restart keeps its ports (clients know them).
/// </summary>
public static class PortRace
{
    public static async Task<T> StartAsync<T>(Func<Task<T>> start, Action pickNewPorts)
    {
        for (int attempt = 1; ; attempt++)
        {
            try { return await start(); }
            catch (PortInUseException) when (attempt < 5) { pickNewPorts(); }
        }
    }
}
