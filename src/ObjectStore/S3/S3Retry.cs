using System.Net;
using System.Net.Sockets;
using Amazon.Runtime;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace Storage.ObjectStore;

/// <summary>
/// Retries S3 requests that failed for a reason that may pass (connection refused or reset, timeout,
/// 5xx, throttling) with exponential backoff and jitter. Client errors (404, 403, a missing bucket)
/// fail at once. The SDK's own retries are off so that this is the only policy.
/// </summary>
internal static class S3Retry
{
    public static ResiliencePipeline Pipeline(S3ObjectStoreOptions options, ILogger logger) =>
        options.MaxRetries == 0 ? ResiliencePipeline.Empty : new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is Exception e && IsTransient(e, args.Context.CancellationToken)),
                MaxRetryAttempts = options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryDelay,
                MaxDelay = options.MaxRetryDelay,
                OnRetry = args =>
                {
                    logger.LogWarning("S3 request failed ({Error}); retry {Attempt} in {Delay} ms",
                        args.Outcome.Exception?.Message, args.AttemptNumber + 1, (int)args.RetryDelay.TotalMilliseconds);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();

    public static bool IsTransient(Exception e, CancellationToken ct)
    {
        if (ct.IsCancellationRequested) return false;
        if (e is AmazonServiceException { StatusCode: var status } service && (int)status != 0)
            return (int)status >= 500 || status == HttpStatusCode.TooManyRequests || service.ErrorCode is "RequestTimeout" or "SlowDown" or "Throttling";
        // Network failures arrive bare or wrapped by the SDK (status 0): look through the chain.
        for (var inner = e; inner is not null; inner = inner.InnerException)
            if (inner is HttpRequestException or IOException or SocketException or TimeoutException or OperationCanceledException)
                return true;
        return false;
    }
}
