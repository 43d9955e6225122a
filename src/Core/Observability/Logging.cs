using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Storage.Core.Observability;

/// <summary>
/// Logging for every service: structured JSON lines on stderr by default (each field of the message
/// template, such as TenantId, TimelineId and FlushLsn, becomes a JSON property), or plain text.
/// </summary>
public static class Logging
{
    /// <summary>What is wrong with a --log-format value (null when it is json or text), for a service's options check.</summary>
    public static string? FormatProblem(string format) =>
        format is "json" or "text" ? null : $"--log-format must be json or text, not '{format}'";

    public static ILoggerFactory CreateFactory(string? format, LogLevel minimum = LogLevel.Information) =>
        LoggerFactory.Create(builder => Configure(builder, format, minimum));

    /// <summary>The same set-up on a host's logging builder.</summary>
    public static void Configure(ILoggingBuilder builder, string? format, LogLevel minimum = LogLevel.Information)
    {
        builder.SetMinimumLevel(minimum);
        builder.AddFilter("Microsoft", LogLevel.Warning);
        builder.AddFilter("Grpc", LogLevel.Warning);
        if (format == "text")
            builder.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
        else
            builder.AddJsonConsole(o => { o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ"; o.UseUtcTimestamp = true; });
        builder.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
    }
}
