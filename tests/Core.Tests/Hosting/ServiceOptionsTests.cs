using System.Net;
using Storage.Core.Hosting;
using Storage.Core.Processes;

namespace Storage.Core.Tests.Hosting;

public class ServiceOptionsTests
{
    private sealed record Options : IValidatedOptions
    {
        [Flag("--id", "node id")] public ulong Id { get; init; } = 1;
        [Flag("--interval-ms", "how often")] public int IntervalMs { get; init; } = 500;
        [Flag("--peers", "where the peers are")] public IReadOnlyList<Uri> Peers { get; init; } = [];
        [Flag("--replay", "run a replay instance")] public bool Replay { get; init; } = true;
        [FlagGroup] public ServiceListenOptions Service { get; init; } = new() { Listen = new IPEndPoint(IPAddress.Loopback, 7000) };
        [FlagGroup] public ObjectStoreOptions ObjectStore { get; init; } = new();

        public IEnumerable<string> Validate()
        {
            if (IntervalMs <= 0) yield return "--interval-ms must be positive";
            foreach (var p in Service.Validate().Concat(ObjectStore.Validate())) yield return p;
        }
    }

    private static (ServiceOptions.Outcome<Options> Outcome, string Output, string Errors) Parse(params string[] args)
    {
        var (output, errors) = (new StringWriter(), new StringWriter());
        var outcome = ServiceOptions.Parse<Options>(args, "a test service", output, errors);
        return (outcome, output.ToString(), errors.ToString());
    }

    [Fact]
    public void Flags_bind_to_typed_values_and_the_rest_keep_their_defaults()
    {
        var (outcome, _, errors) = Parse("--id", "3", "--peers", "http://a:1,http://b:2", "--listen", "0.0.0.0:7671", "--remote-storage", "/x", "--replay", "false");
        Assert.Equal("", errors);
        var options = outcome.Options!;
        Assert.Equal(3UL, options.Id);
        Assert.Equal(500, options.IntervalMs);
        Assert.Equal([new Uri("http://a:1"), new Uri("http://b:2")], options.Peers);
        Assert.Equal(IPEndPoint.Parse("0.0.0.0:7671"), options.Service.Listen);
        Assert.Equal("/x", options.ObjectStore.RemoteStorage);
        Assert.False(options.Replay);
    }

    [Fact]
    public void An_unknown_flag_a_bad_value_and_contradictory_flags_are_clear_errors()
    {
        var unknown = Parse("--idd", "3");
        Assert.Equal(2, unknown.Outcome.ExitCode);
        Assert.Contains("--idd", unknown.Errors);

        var bad = Parse("--interval-ms", "soon");
        Assert.Equal(2, bad.Outcome.ExitCode);
        Assert.Contains("--interval-ms: 'soon' is not a valid int32", bad.Errors);

        var contradictory = Parse("--remote-storage", "/x", "--s3-endpoint", "http://s3:9000", "--s3-bucket", "b");
        Assert.Equal(2, contradictory.Outcome.ExitCode);
        Assert.Contains("contradict", contradictory.Errors);

        Assert.Contains("must be positive", Parse("--interval-ms", "0").Errors);
    }

    [Fact]
    public void Help_lists_every_flag_with_its_default()
    {
        var (outcome, output, _) = Parse("--help");
        Assert.Equal((null, 0), (outcome.Options, outcome.ExitCode));
        foreach (var flag in new[] { "--id", "--interval-ms", "--listen", "--http", "--remote-storage", "--s3-region" })
            Assert.Contains(flag, output);
        Assert.Contains("[default: 500]", output);
        Assert.Contains("[default: 127.0.0.1:7000]", output);
    }

    [Fact]
    public void Arguments_built_from_a_record_parse_back_to_it()
    {
        var options = new Options
        {
            Id = 7,
            Peers = [new Uri("http://p:1")],
            Service = ServiceListenOptions.OnLoopback(8000, 8010),
            ObjectStore = new ObjectStoreOptions { S3Endpoint = "http://s3:9000", S3Bucket = "b" },
        };
        var args = ServiceOptions.ToArguments(options);
        Assert.DoesNotContain("--interval-ms", args); // defaults are not repeated
        var back = Parse(args).Outcome.Options!;
        Assert.Equal(ServiceOptions.ToArguments(back), args);
        Assert.Equal(options.Service, back.Service);
        Assert.Equal(options.ObjectStore, back.ObjectStore);
    }
}
