namespace Storage.Proposer; internal static class Placeholder { }
