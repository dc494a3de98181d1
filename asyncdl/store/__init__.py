"""What asyncdl keeps on disk: the journal (versioned, typed messages), every shard's journal read as one,
the run locks, the crawl store, the segment sidecar, and the names of all of it (:mod:`.names`)."""
