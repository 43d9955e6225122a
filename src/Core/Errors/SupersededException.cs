namespace Storage.Core.Errors;

/// <summary>Something newer took over what the request was doing (an attach, a newer term): the caller stops, and does not retry here.</summary>
public sealed class SupersededException(string message) : ServiceException(FailureKind.Superseded, message);
