using System.Security.Cryptography;

namespace Storage.Core.Postgres.Scram;

/// <summary>The attribute syntax of SCRAM messages (RFC 5802: "a=value,b=value") and the shared computations.</summary>
internal static class ScramMessages
{
    public static Dictionary<char, string> Attributes(string message)
    {
        var attributes = new Dictionary<char, string>();
        foreach (var part in message.Split(','))
        {
            if (part.Length < 2 || part[1] != '=') throw new FormatException($"malformed SCRAM attribute '{part}'");
            attributes[part[0]] = part[2..];
        }
        return attributes;
    }

    public static string Required(Dictionary<char, string> attributes, char name, string message) =>
        attributes.TryGetValue(name, out var value) ? value : throw new FormatException($"SCRAM {message} lacks its '{name}' attribute");

    public static string Nonce() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));

    public static byte[] Xor(byte[] a, byte[] b)
    {
        if (a.Length != b.Length) throw new FormatException("SCRAM proof of the wrong length");
        var result = new byte[a.Length];
        for (int i = 0; i < a.Length; i++) result[i] = (byte)(a[i] ^ b[i]);
        return result;
    }
}
