using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Storage.VmKeeper;

/// <summary>A container as the Docker Engine lists it: its id, name, labels and state ("running", "exited", "restarting", ...).</summary>
public sealed record ContainerSummary(string Id, string Name, IReadOnlyDictionary<string, string> Labels, string State);

/// <summary>What <c>GET /containers/{id}/json</c> says of a container's last run.</summary>
public sealed record ContainerState(string Id, string Name, string Status, bool Restarting, int ExitCode, bool OomKilled);

/// <summary>The Docker Engine API refused or failed a request.</summary>
public sealed class DockerEngineException(string message) : Exception(message);

/// <summary>
/// The few calls of the Docker Engine API the keeper needs, over its Unix socket: list, inspect,
/// start. Unversioned paths: the engine answers them with its own API version.
/// </summary>
public sealed class DockerEngine : IDisposable
{
    private readonly HttpClient _http;

    public DockerEngine(string socketPath, TimeSpan timeout)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellation) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellation);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        // The host name is only the Host header: every request goes to the socket.
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://docker/"), Timeout = timeout };
    }

    /// <summary>Every container (running or not) that carries all of <paramref name="labels"/> (KEY=VALUE each).</summary>
    public async Task<IReadOnlyList<ContainerSummary>> ListAsync(IEnumerable<string> labels, CancellationToken cancellation)
    {
        var filters = JsonSerializer.Serialize(new Dictionary<string, string[]> { ["label"] = labels.ToArray() });
        using var document = await GetJsonAsync($"containers/json?all=1&filters={Uri.EscapeDataString(filters)}", cancellation);
        return document.RootElement.EnumerateArray().Select(c => new ContainerSummary(
            c.GetProperty("Id").GetString()!,
            c.GetProperty("Names").EnumerateArray().Select(n => n.GetString()!.TrimStart('/')).FirstOrDefault() ?? "",
            Labels(c.GetProperty("Labels")),
            c.GetProperty("State").GetString() ?? "")).ToList();
    }

    public async Task<ContainerState> InspectAsync(string id, CancellationToken cancellation)
    {
        using var document = await GetJsonAsync($"containers/{Uri.EscapeDataString(id)}/json", cancellation);
        var root = document.RootElement;
        var state = root.GetProperty("State");
        return new ContainerState(root.GetProperty("Id").GetString()!, root.GetProperty("Name").GetString()!.TrimStart('/'),
            state.GetProperty("Status").GetString() ?? "", state.GetProperty("Restarting").GetBoolean(),
            state.GetProperty("ExitCode").GetInt32(), state.GetProperty("OOMKilled").GetBoolean());
    }

    /// <summary>The labels of container <paramref name="id"/> (a name, an id or its prefix, as a container's host name is).</summary>
    public async Task<IReadOnlyDictionary<string, string>> LabelsAsync(string id, CancellationToken cancellation)
    {
        using var document = await GetJsonAsync($"containers/{Uri.EscapeDataString(id)}/json", cancellation);
        return Labels(document.RootElement.GetProperty("Config").GetProperty("Labels"));
    }

    /// <summary>Starts a stopped container; false when it was running already.</summary>
    public async Task<bool> StartAsync(string id, CancellationToken cancellation)
    {
        using var response = await _http.PostAsync($"containers/{Uri.EscapeDataString(id)}/start", content: null, cancellation);
        if (response.StatusCode == HttpStatusCode.NotModified) return false;
        await EnsureSuccessAsync(response, $"start {id}", cancellation);
        return true;
    }

    private async Task<JsonDocument> GetJsonAsync(string path, CancellationToken cancellation)
    {
        using var response = await _http.GetAsync(path, cancellation);
        await EnsureSuccessAsync(response, "GET /" + path.Split('?')[0], cancellation);
        return await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellation), cancellationToken: cancellation);
    }

    /// <summary>The engine explains a refusal in {"message": ...}; that message is the error's.</summary>
    private static async Task EnsureSuccessAsync(HttpResponseMessage response, string what, CancellationToken cancellation)
    {
        if (response.IsSuccessStatusCode) return;
        var body = await response.Content.ReadAsStringAsync(cancellation);
        string message;
        try { message = JsonDocument.Parse(body).RootElement.GetProperty("message").GetString() ?? body; }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException) { message = body; }
        throw new DockerEngineException($"Docker Engine: {what}: {(int)response.StatusCode} {message.Trim()}");
    }

    private static Dictionary<string, string> Labels(JsonElement labels) =>
        labels.ValueKind == JsonValueKind.Object
            ? labels.EnumerateObject().ToDictionary(l => l.Name, l => l.Value.GetString() ?? "")
            : [];

    public void Dispose() => _http.Dispose();
}
