package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/ipcframe/ipcframe/internal/leaktest"
)

// TestMain lets the test binary stand in for the bench program when a
// test spawns it as a child (-mode relay runs its relay node with
// -relay-serve): with that first argument it runs as bench. Otherwise the
// tests run and must leave no goroutine behind (the embedded services and
// load generator stop before run returns).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-relay-serve" {
		os.Exit(exitCode(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
	}
	goleak.VerifyTestMain(m, leaktest.Ignore()...)
}
