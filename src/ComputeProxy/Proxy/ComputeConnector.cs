using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace Storage.ComputeProxy.Proxy;

/// <summary>
/// Finds the endpoint's compute through the locator (which wakes it if needed) and connects to it.
/// A connect that fails (refused, reset, timed out, closed before answering: the compute may have
/// just died) invalidates that address and is retried with a growing back-off, so a client that
/// connects during a failover sees a delay rather than an error.
/// </summary>
public sealed class ComputeConnector
{
    private readonly IComputeLocator _locator;
    private readonly ProxyOptions _options;
    private readonly ProxyMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ResiliencePipeline _retry;

    public ComputeConnector(IComputeLocator locator, ProxyOptions options, ProxyMetrics metrics, ILogger logger)
    {
        _locator = locator;
        _options = options;
        _metrics = metrics;
        _logger = logger;
        var builder = new ResiliencePipelineBuilder();
        if (options.ConnectRetries > 0)
            builder.AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<ComputeConnectException>(),
                MaxRetryAttempts = options.ConnectRetries,
                BackoffType = DelayBackoffType.Exponential,
                Delay = options.RetryBaseDelay,
                MaxDelay = options.RetryMaxDelay,
                UseJitter = true,
                OnRetry = args =>
                {
                    _metrics.ConnectRetries.Inc();
                    var failure = (ComputeConnectException)args.Outcome.Exception!;
                    _logger.LogWarning("Connect to compute {Compute} of endpoint {Endpoint} failed ({Error}); retry {Attempt} in {DelayMs} ms",
                        failure.Address, failure.EndpointId, failure.InnerException?.Message, args.AttemptNumber + 1, (int)args.RetryDelay.TotalMilliseconds);
                    return default;
                },
            });
        _retry = builder.Build();
    }

    public async Task<ComputeConnection> ConnectAsync(string endpointId, byte[] startupPacket, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            var connection = await _retry.ExecuteAsync(async token => await AttemptAsync(endpointId, startupPacket, token), ct);
            _metrics.ConnectLatency.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
            return connection;
        }
        catch (ComputeConnectException e)
        {
            throw new ProxyRejectException(SqlStates.UnableToConnect, "compute_unreachable",
                $"could not connect to the compute of endpoint \"{endpointId}\" after {_options.ConnectRetries + 1} attempts: {e.InnerException?.Message}");
        }
    }

    private async Task<ComputeConnection> AttemptAsync(string endpointId, byte[] startupPacket, CancellationToken ct)
    {
        var address = await LocateAsync(endpointId, ct);
        try
        {
            return await ComputeConnection.OpenAsync(address, startupPacket, _options.ConnectTimeout, ct);
        }
        catch (Exception e) when (e is SocketException or IOException or TimeoutException)
        {
            _locator.Invalidate(endpointId, address);
            throw new ComputeConnectException(endpointId, address, e);
        }
    }

    private async Task<ComputeAddress> LocateAsync(string endpointId, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(_options.LocateTimeout);
        try
        {
            return await _locator.LocateAsync(endpointId, deadline.Token);
        }
        catch (UnknownEndpointException)
        {
            throw new ProxyRejectException(SqlStates.UnknownEndpoint, "unknown_endpoint", $"endpoint \"{endpointId}\" does not exist",
                "Check the endpoint id in the connection options (options=endpoint=<id>) or the host name.");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new ProxyRejectException(SqlStates.UnableToConnect, "wake_timeout",
                $"the compute of endpoint \"{endpointId}\" did not start within {_options.LocateTimeout.TotalSeconds:0.#} s");
        }
        catch (Exception e) when (e is not OperationCanceledException and not ProxyRejectException)
        {
            _logger.LogError(e, "Locating the compute of endpoint {Endpoint} failed", endpointId);
            throw new ProxyRejectException(SqlStates.UnableToConnect, "locate_failed",
                $"could not find a compute for endpoint \"{endpointId}\": {e.Message}");
        }
    }
}

/// <summary>One failed connect to a compute (retried by the connector).</summary>
public sealed class ComputeConnectException(string endpointId, ComputeAddress address, Exception inner)
    : Exception($"connect to {address.Host}:{address.Port} failed: {inner.Message}", inner)
{
    public string EndpointId { get; } = endpointId;
    public ComputeAddress Address { get; } = address;
}
