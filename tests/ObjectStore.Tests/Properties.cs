// The tests share two cores and the heap measurement of the streaming test needs a quiet process.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
