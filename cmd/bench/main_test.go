package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary stand in for the bench program when a
// test spawns it as a child (-mode relay runs its relay node with
// -relay-serve): with that first argument it runs as bench.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-relay-serve" {
		os.Exit(exitCode(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
	}
	os.Exit(m.Run())
}
