//go:build race

package test

// raceEnabled reports a build with the race detector, which runs the
// engine about ten times slower: the longest transfers shrink.
const raceEnabled = true

// raceStreamSize is the relayed stream's size under the race detector.
const raceStreamSize = 128 << 20
