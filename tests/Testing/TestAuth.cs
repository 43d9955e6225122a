using System.Runtime.CompilerServices;
using Storage.Core.Auth;
using Storage.Core.Rpc;

namespace Storage.Testing;

/// <summary>
/// The key pair and service tokens of every cluster a test process starts (auth is always on): one
/// set per process, in its own temp directory, removed at exit. The test process itself calls the
/// services as an admin (<see cref="GrpcChannels.DefaultToken"/>); tests of refusals name their own
/// token per channel.
/// </summary>
public static class TestAuth
{
    private static readonly string Root = Path.Combine(Path.GetTempPath(), $"storage-test-auth-{Environment.ProcessId}-{Guid.NewGuid():N}");

    public static ClusterSecrets Secrets { get; } = ClusterSecrets.CreateOrOpen(Root);

    public static string AdminToken => Secrets.Token(Scope.Admin, "tests");

    /// <summary>Mints compute tokens as the control plane does.</summary>
    public static ComputeTokens ComputeTokens { get; } = new(Secrets.Issuer());

    // Every test assembly that starts a cluster loads this one first: its calls carry the token from the start.
    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "test support: the process-wide default token of the test process")]
    internal static void CallAsAdmin()
    {
        GrpcChannels.DefaultToken = AdminToken;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(Root, recursive: true); } catch (IOException) { } };
    }

    /// <summary>The flags of a service that only checks tokens (a safekeeper, a compute agent).</summary>
    public static string[] VerifierArguments => Secrets.VerifierArguments();
}
