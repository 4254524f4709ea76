package main

import (
	"os"
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
