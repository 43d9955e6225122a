using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Storage.Core.Auth;
using Storage.Testing;

namespace Storage.ControlPlane.Tests;

/// <summary>The admin HTTP API over a real control plane (and its VMs).</summary>
public sealed class AdminApiTests(ClusterFixture fixture, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    [Fact]
    public async Task Creates_lists_attaches_reports_status_and_suspends_over_http_with_clear_errors()
    {
        await using var h = await Harness.StartAsync(fixture.Cluster, output, admin: true);
        using var http = new HttpClient { BaseAddress = h.AdminUri, Timeout = TimeSpan.FromMinutes(2) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TestAuth.AdminToken);

        var created = await http.PostAsJsonAsync("/endpoints", new
        {
            id = "api", tenantId = h.Cluster.TenantId, timelineId = h.Cluster.TimelineId, roleName = "app", rolePassword = "pw-api",
            postgresSettings = new Dictionary<string, string> { ["shared_buffers"] = "32MB" }, suspendTimeoutSeconds = 600,
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var endpoint = await Json(created);
        Assert.Equal("suspended", endpoint.GetProperty("state").GetString());
        Assert.Equal(600, endpoint.GetProperty("suspendTimeoutSeconds").GetDouble());
        Assert.DoesNotContain("pw-api", endpoint.GetRawText()); // passwords are write-only

        var list = await Json(await http.GetAsync("/endpoints"));
        Assert.Equal("api", Assert.Single(list.EnumerateArray()).GetProperty("id").GetString());

        var attached = await Json(await http.PostAsync("/endpoints/api/attach", null));
        Assert.Equal("attached", attached.GetProperty("state").GetString());
        Assert.Equal(1, await h.ScalarAsync("api", "select 1"));

        var status = await Json(await http.GetAsync("/status"));
        Assert.DoesNotContain("pw-api", status.GetRawText());
        var vmId = attached.GetProperty("vmId").GetString();
        Assert.Equal(vmId, status.GetProperty("endpoints")[0].GetProperty("vmId").GetString());
        var vms = status.GetProperty("vms").EnumerateArray().ToList();
        Assert.Equal(2, vms.Count);
        Assert.Contains(vms, v => v.GetProperty("id").GetString() == vmId && v.GetProperty("state").GetString() == "attached" && v.GetProperty("pid").GetInt32() > 0);
        Assert.Equal(2, (await Json(await http.GetAsync("/vms"))).GetArrayLength());

        var suspended = await Json(await http.PostAsync("/endpoints/api/suspend", null));
        Assert.Equal("suspended", suspended.GetProperty("state").GetString());
        var metrics = await http.GetStringAsync("/metrics");
        Assert.Contains("controlplane_suspends_total 1", metrics);
        Assert.Contains("controlplane_pool_idle_vms 2", metrics);
        Assert.Contains("controlplane_wakes_total 1", metrics);

        // Errors: unknown endpoint 404, bad input 400, an existing id 409; each with a message.
        await AssertErrorAsync(await http.GetAsync("/endpoints/nope"), HttpStatusCode.NotFound, "nope");
        await AssertErrorAsync(await http.PostAsync("/endpoints/nope/attach", null), HttpStatusCode.NotFound, "nope");
        await AssertErrorAsync(await http.PostAsJsonAsync("/endpoints", new { id = "Bad Id!", tenantId = h.Cluster.TenantId, timelineId = h.Cluster.TimelineId }),
            HttpStatusCode.BadRequest, "endpoint id");
        await AssertErrorAsync(await http.PostAsJsonAsync("/endpoints", new { id = "x", tenantId = "zz", timelineId = h.Cluster.TimelineId }),
            HttpStatusCode.BadRequest, "tenant id");
        await AssertErrorAsync(await http.PostAsync("/endpoints", new StringContent("{not json", System.Text.Encoding.UTF8, "application/json")),
            HttpStatusCode.BadRequest, "");
        await AssertErrorAsync(await http.PostAsJsonAsync("/endpoints", new { id = "api", tenantId = h.Cluster.TenantId, timelineId = h.Cluster.TimelineId }),
            HttpStatusCode.Conflict, "already exists");

        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync("/endpoints/api")).StatusCode);
        await AssertErrorAsync(await http.DeleteAsync("/endpoints/api"), HttpStatusCode.NotFound, "api");
        Assert.Equal(0, (await Json(await http.GetAsync("/endpoints"))).GetArrayLength());
    }

    [Fact]
    public async Task Every_path_but_metrics_refuses_a_missing_bad_or_non_admin_token_and_changes_nothing()
    {
        await using var h = await Harness.StartAsync(fixture.Cluster, output, admin: true);
        using var http = new HttpClient { BaseAddress = h.AdminUri, Timeout = TimeSpan.FromMinutes(2) };
        var otherRoot = Directory.CreateTempSubdirectory("other-cluster-").FullName;
        string intruderToken;
        try { intruderToken = ClusterSecrets.CreateOrOpen(otherRoot).Token(Scope.Admin, "intruder"); } // an admin of another cluster
        finally { Directory.Delete(otherRoot, recursive: true); }
        var refusals = new (string? Token, HttpStatusCode Status, string Mentions)[]
        {
            (null, HttpStatusCode.Unauthorized, "no token"),
            ("not-a-jwt", HttpStatusCode.Unauthorized, "malformed"),
            (intruderToken, HttpStatusCode.Unauthorized, "signature"),
            (TestAuth.Secrets.Token(Scope.Pageserver, "ps1"), HttpStatusCode.Forbidden, "admin token"),
            (TestAuth.Secrets.Token(Scope.ControlPlane, "control-plane"), HttpStatusCode.Forbidden, "admin token"),
        };
        var body = new { id = "intruder", tenantId = h.Cluster.TenantId, timelineId = h.Cluster.TimelineId };
        foreach (var (token, status, mentions) in refusals)
            foreach (var (method, path) in new[] { ("GET", "/endpoints"), ("POST", "/endpoints"), ("GET", "/status"), ("GET", "/vms"), ("POST", "/endpoints/main/attach"),
                         ("DELETE", "/endpoints/main"), ("GET", "/no-such-path") })
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = method == "POST" ? JsonContent.Create(body) : null };
                if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                using var response = await http.SendAsync(request);
                await AssertErrorAsync(response, status, mentions);
                if (status == HttpStatusCode.Unauthorized) Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
            }
        Assert.Contains("controlplane_", await http.GetStringAsync("/metrics")); // scrapers need no token, as on every service

        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TestAuth.AdminToken);
        Assert.Equal(0, (await Json(await http.GetAsync("/endpoints"))).GetArrayLength()); // nothing refused was done
    }

    private static async Task<JsonElement> Json(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static async Task AssertErrorAsync(HttpResponseMessage response, HttpStatusCode expected, string mentions)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"expected {expected}, got {(int)response.StatusCode}: {text}");
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error").GetString();
        Assert.False(string.IsNullOrWhiteSpace(error));
        Assert.Contains(mentions, error);
    }
}
