//go:build race

package test

// raceEnabled reports a build with the race detector, whose sync.Pool
// drops a quarter of what is put back on purpose: pooled objects are
// allocated again now and then (TestRelayZeroAllocs).
const raceEnabled = true
