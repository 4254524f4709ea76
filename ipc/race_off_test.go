//go:build !race

package ipc

// raceEnabled reports a build with the race detector (race_on_test.go).
const raceEnabled = false
