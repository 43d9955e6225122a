// Every test runs real safekeepers, a pageserver and a pool of compute VMs on two cores: one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
