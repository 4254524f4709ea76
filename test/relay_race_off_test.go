//go:build !race

package test

// raceEnabled reports a build with the race detector (relay_race_on_test.go).
const raceEnabled = false
