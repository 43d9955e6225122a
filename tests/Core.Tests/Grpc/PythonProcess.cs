using System.Diagnostics;
using System.Text;

namespace Storage.Core.Tests.Grpc;

/// <summary>
/// Runs an interop script with Debian's /usr/bin/python3 (which has python3-grpcio), collecting
/// its output. Disposing kills the process by its PID if it is still running.
/// </summary>
internal sealed class PythonProcess : IDisposable
{
    private const string Python = "/usr/bin/python3";
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _errors = new();
    private readonly TaskCompletionSource<string> _firstLine = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private PythonProcess(Process process) => _process = process;

    public string Output { get { lock (_output) return _output.ToString(); } }

    public string Errors { get { lock (_errors) return _errors.ToString(); } }

    public static PythonProcess Start(string script, params string[] args)
    {
        string scripts = Path.Combine(AppContext.BaseDirectory, "Grpc", "interop");
        var info = new ProcessStartInfo(Python)
        {
            WorkingDirectory = scripts,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(scripts, script));
        foreach (string arg in args)
            info.ArgumentList.Add(arg);
        // Isolate from any pyenv/virtualenv settings and proxies of the test environment.
        foreach (string name in new[] { "PYTHONPATH", "PYTHONHOME", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy" })
            info.Environment.Remove(name);
        info.Environment["PYTHONUNBUFFERED"] = "1";
        info.Environment["PYTHONIOENCODING"] = "utf-8";

        var process = new Process { StartInfo = info };
        var python = new PythonProcess(process);
        process.OutputDataReceived += (_, e) => python.OnOutput(e.Data);
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (python._errors) python._errors.AppendLine(e.Data); };
        if (!process.Start())
            throw new InvalidOperationException($"Could not start {Python}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return python;
    }

    public Task<string> FirstLineAsync(TimeSpan timeout) => _firstLine.Task.WaitAsync(timeout);

    /// <summary>Waits for exit; on timeout kills the process and throws.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"python did not finish within {timeout}. Output:\n{Output}\nErrors:\n{Errors}");
        }
        _process.WaitForExit(); // flushes the redirected output
        return _process.ExitCode;
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private void OnOutput(string? line)
    {
        if (line is null)
        {
            _firstLine.TrySetException(new InvalidOperationException($"python exited without output. Errors:\n{Errors}"));
            return;
        }
        lock (_output)
            _output.AppendLine(line);
        _firstLine.TrySetResult(line);
    }
}
