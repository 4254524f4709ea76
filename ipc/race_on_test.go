//go:build race

package ipc

// raceEnabled reports a build with the race detector, whose sync.Pool drops
// a quarter of what is put back on purpose: pooled objects are allocated
// again now and then (TestSegCacheNoAllocations).
const raceEnabled = true
