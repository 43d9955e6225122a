using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Storage.Core.Postgres.Scram;

/// <summary>
/// The server side of one SCRAM-SHA-256 authentication against a stored verifier (no channel
/// binding: the client's gs2 header must be "n" or "y"). A successful exchange also yields the
/// session's ClientKey, recovered from the client's proof, with which the proxy authenticates to
/// the compute in turn, so the password never travels further than the client.
/// </summary>
public sealed class ScramServerExchange(ScramVerifier verifier)
{
    private string _clientFirstBare = "", _serverFirst = "", _gs2Header = "", _nonce = "";

    /// <summary>Takes the client-first message; returns the server-first message.</summary>
    public string HandleClientFirst(string clientFirst)
    {
        // gs2 header "n,," or "y,," (client could bind but the server offers no -PLUS), then "n=user,r=nonce".
        if (!(clientFirst.StartsWith("n,", StringComparison.Ordinal) || clientFirst.StartsWith("y,", StringComparison.Ordinal)))
            throw new FormatException("SCRAM channel binding is not supported here (use SCRAM-SHA-256, not -PLUS)");
        int bare = clientFirst.IndexOf(',', 2);
        if (bare < 0) throw new FormatException("malformed SCRAM client-first message");
        _gs2Header = clientFirst[..(bare + 1)];
        _clientFirstBare = clientFirst[(bare + 1)..];
        var clientNonce = ScramMessages.Required(ScramMessages.Attributes(_clientFirstBare), 'r', "client-first message");
        _nonce = clientNonce + ScramMessages.Nonce();
        _serverFirst = $"r={_nonce},s={Convert.ToBase64String(verifier.Salt)},i={verifier.Iterations.ToString(CultureInfo.InvariantCulture)}";
        return _serverFirst;
    }

    /// <summary>
    /// Takes the client-final message: null when the proof is wrong (a wrong password), else the
    /// server-final message and the recovered ClientKey.
    /// </summary>
    public (string ServerFinal, byte[] ClientKey)? HandleClientFinal(string clientFinal)
    {
        int proofAt = clientFinal.LastIndexOf(",p=", StringComparison.Ordinal);
        if (proofAt < 0) throw new FormatException("SCRAM client-final message without a proof");
        var withoutProof = clientFinal[..proofAt];
        var attributes = ScramMessages.Attributes(withoutProof);
        if (ScramMessages.Required(attributes, 'c', "client-final message") != Convert.ToBase64String(Encoding.ASCII.GetBytes(_gs2Header)))
            throw new FormatException("SCRAM channel binding data does not match the client-first message");
        if (ScramMessages.Required(attributes, 'r', "client-final message") != _nonce)
            throw new FormatException("SCRAM nonce does not match");
        var proof = Convert.FromBase64String(clientFinal[(proofAt + 3)..]);
        var authMessage = Encoding.UTF8.GetBytes($"{_clientFirstBare},{_serverFirst},{withoutProof}");
        var clientKey = ScramMessages.Xor(proof, HMACSHA256.HashData(verifier.StoredKey, authMessage));
        if (!CryptographicOperations.FixedTimeEquals(SHA256.HashData(clientKey), verifier.StoredKey)) return null;
        return ($"v={Convert.ToBase64String(HMACSHA256.HashData(verifier.ServerKey, authMessage))}", clientKey);
    }
}
