namespace Storage.ObjectStore;

/// <summary>No object has this key.</summary>
public sealed class ObjectNotFoundException(string key)
    : IOException($"object '{key}' does not exist")
{
    public string Key { get; } = key;
}

/// <summary>An object failed its checks (checksum, length, format): its content must not be used.</summary>
public sealed class ObjectCorruptException(string key, string reason)
    : IOException($"object '{key}' is corrupt: {reason}")
{
    public string Key { get; } = key;
    public string Reason { get; } = reason;
}
