using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Storage.ComputeProxy.ControlPlane;
using Storage.Core.Rpc;

namespace Storage.Cli;

/// <summary>
/// The control plane's admin HTTP API as storagectl uses it (the view types are the API's own), with
/// the admin token storagectl calls every service with (<see cref="GrpcChannels.DefaultToken"/>). An
/// unreachable API or an error answer becomes a <see cref="CliError"/> naming what was asked.
/// </summary>
public sealed class AdminClient : IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly Uri _adminUri;
    private readonly HttpClient _http;

    public AdminClient(Uri adminUri, string? token = null)
    {
        _adminUri = adminUri;
        // Long enough for a wake: the control plane waits up to its wake timeout (90 s) for a VM.
        _http = new HttpClient { BaseAddress = adminUri, Timeout = TimeSpan.FromMinutes(3) };
        if ((token ?? GrpcChannels.DefaultToken) is { Length: > 0 } bearer)
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
    }

    public AdminClient(ProxyEntry proxy) : this(proxy.AdminUri) { }

    public Task<AdminApi.StatusView> StatusAsync(CancellationToken ct = default) =>
        SendAsync<AdminApi.StatusView>("read the status", HttpMethod.Get, "/status", null, ct)!;

    /// <summary>The endpoint, or null if the registry has none of that id.</summary>
    public async Task<AdminApi.EndpointView?> FindEndpointAsync(string id, CancellationToken ct = default) =>
        (await StatusAsync(ct)).Endpoints.FirstOrDefault(e => e.Id == id);

    public Task<AdminApi.EndpointView> CreateEndpointAsync(AdminApi.CreateEndpointBody body, CancellationToken ct = default) =>
        SendAsync<AdminApi.EndpointView>($"create endpoint {body.Id}", HttpMethod.Post, "/endpoints", body, ct);

    /// <summary>Wakes the endpoint: returns once it is attached to a VM whose PostgreSQL accepts connections.</summary>
    public Task<AdminApi.EndpointView> AttachAsync(string id, CancellationToken ct = default) =>
        SendAsync<AdminApi.EndpointView>($"attach endpoint {id}", HttpMethod.Post, $"/endpoints/{Uri.EscapeDataString(id)}/attach", null, ct);

    public Task<AdminApi.EndpointView> SuspendAsync(string id, CancellationToken ct = default) =>
        SendAsync<AdminApi.EndpointView>($"suspend endpoint {id}", HttpMethod.Post, $"/endpoints/{Uri.EscapeDataString(id)}/suspend", null, ct);

    private async Task<T> SendAsync<T>(string what, HttpMethod method, string path, object? body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body, options: Json) };
        HttpResponseMessage response;
        try { response = await _http.SendAsync(request, ct); }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            // The cause stays attached: `bootstrap` retries an unreachable API while the proxy starts.
            throw new CliError($"the control plane at {_adminUri} could not {what}: {e.Message} (is the proxy running? `storagectl start proxy`)", e);
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
                throw new CliError($"the control plane could not {what}: {await ErrorOf(response, ct)}");
            return await response.Content.ReadFromJsonAsync<T>(Json, ct) ?? throw new CliError($"the control plane sent an empty answer to {what}");
        }
    }

    /// <summary>The API's {"error": "..."}, or the status line when the body is something else.</summary>
    private static async Task<string> ErrorOf(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
            if (doc.RootElement.TryGetProperty("error", out var error)) return error.GetString() ?? "";
        }
        catch (JsonException) { }
        return $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}";
    }

    public void Dispose() => _http.Dispose();
}
