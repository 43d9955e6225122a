using Storage.Core.Wal;

namespace Storage.Cli;

/// <summary>An expected failure: printed as one line, no stack trace, exit code 1.</summary>
public sealed class CliError(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Runs a command body and turns expected failures into a one-line message and exit code 1.</summary>
public static class CliRunner
{
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try { return await body(); }
        catch (Exception e) when (e is CliError or IOException or UnauthorizedAccessException or Grpc.Core.RpcException
                                      or WalDecodeException or ArgumentException or TimeoutException or InvalidOperationException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
