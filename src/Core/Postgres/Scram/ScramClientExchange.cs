using System.Security.Cryptography;
using System.Text;

namespace Storage.Core.Postgres.Scram;

/// <summary>
/// The client side of one SCRAM-SHA-256 authentication with a ClientKey instead of a password
/// (the proxy, holding the key it recovered from its own client's proof). The server must hold the
/// same verifier (its salt and iteration count are checked), and its signature is verified with
/// that verifier's ServerKey, so a compute that does not know the verifier is not trusted either.
/// </summary>
public sealed class ScramClientExchange(byte[] clientKey, ScramVerifier verifier)
{
    private readonly string _clientFirstBare = $"n=,r={ScramMessages.Nonce()}";
    private byte[] _authMessage = [];

    /// <summary>The client-first message (gs2 header "n,,": no channel binding).</summary>
    public string ClientFirst => "n,," + _clientFirstBare;

    public string HandleServerFirst(string serverFirst)
    {
        var attributes = ScramMessages.Attributes(serverFirst);
        var nonce = ScramMessages.Required(attributes, 'r', "server-first message");
        if (!nonce.StartsWith(_clientFirstBare[5..], StringComparison.Ordinal)) throw new FormatException("the server's SCRAM nonce does not extend ours");
        var salt = Convert.FromBase64String(ScramMessages.Required(attributes, 's', "server-first message"));
        var iterations = int.Parse(ScramMessages.Required(attributes, 'i', "server-first message"), System.Globalization.CultureInfo.InvariantCulture);
        if (iterations != verifier.Iterations || !salt.AsSpan().SequenceEqual(verifier.Salt))
            throw new InvalidOperationException("the server's SCRAM verifier is not the endpoint's (another salt or iteration count)");
        var withoutProof = $"c=biws,r={nonce}";
        _authMessage = Encoding.UTF8.GetBytes($"{_clientFirstBare},{serverFirst},{withoutProof}");
        var proof = ScramMessages.Xor(clientKey, HMACSHA256.HashData(SHA256.HashData(clientKey), _authMessage));
        return $"{withoutProof},p={Convert.ToBase64String(proof)}";
    }

    public void HandleServerFinal(string serverFinal)
    {
        var attributes = ScramMessages.Attributes(serverFinal);
        if (attributes.TryGetValue('e', out var error)) throw new InvalidOperationException($"the server refused SCRAM authentication: {error}");
        var signature = Convert.FromBase64String(ScramMessages.Required(attributes, 'v', "server-final message"));
        if (!CryptographicOperations.FixedTimeEquals(signature, HMACSHA256.HashData(verifier.ServerKey, _authMessage)))
            throw new InvalidOperationException("the server's SCRAM signature is wrong: it does not hold the endpoint's verifier");
    }
}
