using System.Text;

namespace Storage.ComputeProxy.Proxy;

/// <summary>
/// The <c>options</c> startup parameter split as PostgreSQL splits it (pg_split_opts: words
/// separated by whitespace, a backslash makes the next character literal). Each token keeps its
/// raw text so the options forwarded to PostgreSQL are exactly what the client wrote, minus ours.
/// </summary>
public static class StartupOptions
{
    public readonly record struct Token(string Raw, string Value);

    public static List<Token> Split(string options)
    {
        var tokens = new List<Token>();
        int i = 0;
        while (i < options.Length)
        {
            while (i < options.Length && char.IsWhiteSpace(options[i])) i++;
            if (i == options.Length) break;
            int start = i;
            var value = new StringBuilder();
            while (i < options.Length && !char.IsWhiteSpace(options[i]))
            {
                if (options[i] == '\\' && i + 1 < options.Length) i++;
                value.Append(options[i++]);
            }
            tokens.Add(new Token(options[start..i], value.ToString()));
        }
        return tokens;
    }

    public static string Join(IEnumerable<Token> tokens) => string.Join(' ', tokens.Select(t => t.Raw));
}
