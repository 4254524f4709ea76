//go:build !race

package test

// raceEnabled reports a build with the race detector (race_on_test.go).
const raceEnabled = false

// raceStreamSize is unused without the race detector.
const raceStreamSize = 0
