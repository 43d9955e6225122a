using System.Net;
using Storage.Core.Processes;

namespace Storage.Safekeeper.Tests.Replication;

public class ReplicationOptionsTests
{
    [Fact]
    public void The_replication_port_is_never_open_a_safekeeper_needs_a_key_to_check_tokens()
    {
        var open = new SafekeeperOptions { PgListen = new IPEndPoint(IPAddress.Loopback, 5432) };
        Assert.Contains(open.Validate(), p => p.Contains("--auth-public-key is required"));
        Assert.Contains("--pg-listen", SafekeeperCommand.Arguments(open));
        var keyed = open with { Auth = new AuthOptions { PublicKeyFile = global::Storage.Testing.TestAuth.Secrets.PublicKeyFile } };
        Assert.Empty(keyed.Validate());
    }
}
