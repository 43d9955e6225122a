using System.Net;
using Storage.Core.Processes;

namespace Storage.Safekeeper.Tests.Replication;

public class ReplicationOptionsTests
{
    [Fact]
    public void The_replication_port_is_never_open_it_needs_a_key_to_check_tokens()
    {
        var open = new SafekeeperOptions { PgListen = new IPEndPoint(IPAddress.Loopback, 5432) };
        Assert.Contains(open.Validate(), p => p.Contains("--pg-listen needs --auth-public-key"));
        Assert.Contains("--pg-listen", SafekeeperCommand.Arguments(open));
        Assert.DoesNotContain(new SafekeeperOptions().Validate(), p => p.Contains("--pg-listen"));
    }
}
