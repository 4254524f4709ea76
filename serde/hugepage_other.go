//go:build !linux

package serde

// adviseHuge does nothing outside linux (see hugepage_linux.go).
func adviseHuge([]byte) {}
