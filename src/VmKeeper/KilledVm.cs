namespace Storage.VmKeeper;

/// <summary>
/// Which stopped pool VM containers the keeper starts again. Docker's restart policies restart a
/// container whose process died on its own (a crash, the OOM killer), but never one stopped through
/// its API: `docker kill` marks the container as stopped by hand. For a VM pool that is still a dead
/// VM to replace, told apart from an operator's `docker stop` (or compose stop/down) by how it ended:
/// a stop lets the agent exit on SIGTERM, a kill ends it with SIGKILL (exit code 137).
/// </summary>
public static class KilledVm
{
    public const int SigKillExitCode = 128 + 9;

    /// <summary>True for an exited container that its restart policy is not already bringing back and that was SIGKILLed.</summary>
    public static bool ShouldStartAgain(ContainerState state) =>
        state.Status == "exited" && !state.Restarting && state.ExitCode == SigKillExitCode;
}
