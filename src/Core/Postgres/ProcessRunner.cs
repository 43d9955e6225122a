using System.Diagnostics;
using System.Text;

namespace Storage.Core.Postgres;

/// <summary>Outcome of a finished command.</summary>
public sealed record ProcessResult(string Command, int ExitCode, string StandardOutput, string StandardError)
{
    public bool Succeeded => ExitCode == 0;

    public ProcessResult ThrowIfFailed(string what)
    {
        if (!Succeeded)
            throw new InvalidOperationException($"{what} failed with exit code {ExitCode}: {Command}\n{StandardError.Trim()}\n{StandardOutput.Trim()}".TrimEnd());
        return this;
    }
}

/// <summary>Runs a short command to completion with a time limit, capturing its output.</summary>
public static class ProcessRunner
{
    public static async Task<ProcessResult> RunAsync(ProcessStartInfo psi, TimeSpan timeout, CancellationToken ct = default)
    {
        psi.UseShellExecute = false;
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.RedirectStandardInput = false;
        var command = string.Join(' ', new[] { psi.FileName }.Concat(psi.ArgumentList));

        using var process = new Process { StartInfo = psi };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data != null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.AppendLine(e.Data); };
        if (!process.Start()) throw new InvalidOperationException($"could not start {command}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeoutCts.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(timeoutCts.Token);
        }
        catch (OperationCanceledException)
        {
            // Kill only the process we started (by its own handle/PID).
            try { process.Kill(); } catch (InvalidOperationException) { }
            ct.ThrowIfCancellationRequested();
            throw new TimeoutException($"{command} did not finish within {timeout.TotalSeconds:0} s");
        }
        process.WaitForExit(); // flushes the asynchronous output readers
        string o, e2;
        lock (stdout) o = stdout.ToString();
        lock (stderr) e2 = stderr.ToString();
        return new ProcessResult(command, process.ExitCode, o, e2);
    }

    public static Task<ProcessResult> RunAsync(string program, IEnumerable<string> arguments, TimeSpan timeout, CancellationToken ct = default)
    {
        var psi = new ProcessStartInfo(program);
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        return RunAsync(psi, timeout, ct);
    }
}
