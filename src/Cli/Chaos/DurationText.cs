using System.Globalization;
using System.Text.RegularExpressions;

namespace Storage.Cli.Chaos;

/// <summary>Durations as people write them on a command line: "90s", "5m", "1h", "1m30s", or a bare number of seconds.</summary>
public static partial class DurationText
{
    [GeneratedRegex(@"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$", RegexOptions.IgnoreCase)]
    private static partial Regex Pattern();

    public static TimeSpan Parse(string text, string option)
    {
        var match = Pattern().Match(text.Trim());
        if (text.Trim().Length == 0 || !match.Success) throw new CliError($"{option}: '{text}' is not a duration; write e.g. 90s, 5m, 1h or 1m30s");
        double Part(int group) => match.Groups[group].Success ? double.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture) : 0;
        var duration = TimeSpan.FromHours(Part(1)) + TimeSpan.FromMinutes(Part(2)) + TimeSpan.FromSeconds(Part(3));
        return duration > TimeSpan.Zero ? duration : throw new CliError($"{option}: the duration must be positive");
    }
}
