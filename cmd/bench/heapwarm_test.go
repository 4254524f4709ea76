package main

import (
	"bytes"
	"os"
	"regexp"
	"syscall"
	"testing"
)

// TestMinorFaults checks the fault counter the heap warm-up reads: touching
// every page of a fresh anonymous mapping adds at least as many minor
// faults to this process as the mapping has pages (less a margin for
// fault-around), and a process that does not exist is an error.
func TestMinorFaults(t *testing.T) {
	const pages = 1024
	page := os.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, pages*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Munmap(mem) }()
	f0, err := minorFaults(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(mem); i += page {
		mem[i] = 1
	}
	f1, err := minorFaults(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got := f1 - f0; got < pages/2 {
		t.Errorf("touching %d fresh pages added %d minor faults, want at least %d", pages, got, pages/2)
	}
	if _, err := minorFaults(-1); err == nil {
		t.Error("minorFaults(-1): no error")
	}
}

// TestBulkModeWarmsHeap runs -mode bulk with 1 MiB messages: the heap
// warm-up runs before the measured window and is reported apart from the
// rate, which the window measured, and so is the window's cost.
func TestBulkModeWarmsHeap(t *testing.T) {
	holdWindow(t, 0, nil)
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-mode", "bulk", "-size", "1048576", "-duration", "200ms", "-quiet"}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
	out := stdout.String()
	t.Logf("\n%s", out)
	warm := regexp.MustCompile(`(?m)^heap warm-up \(excluded from the numbers\): ([0-9]+) windows of 250ms`).FindStringSubmatch(out)
	if warm == nil || warm[1] == "0" {
		t.Errorf("no heap warm-up line with windows in:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^bulk 1 MiB one way: ipcframe [1-9][0-9]* MB/s`).MatchString(out) {
		t.Errorf("no bulk rate line in:\n%s", out)
	}
	// windowmeter.go: the measured window's cost, with at least one
	// message moved.
	if !regexp.MustCompile(`(?m)^bulk window cost: ipcframe [0-9]+ CPU-ms/GB, raw TCP [0-9]+ CPU-ms/GB; [1-9][0-9]* messages, [0-9]+ faults per message \([0-9]+ of them prefaulted\), [0-9.]+ GC cycles per message$`).MatchString(out) {
		t.Errorf("no window cost line in:\n%s", out)
	}
}
