package serde

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on linux/amd64 and arm64.
const hugePage = 2 << 20

// adviseHuge asks the kernel to back the whole huge pages inside the
// array of b (its capacity) with transparent huge pages as they are first
// touched (madvise MADV_HUGEPAGE; with the system's THP setting
// "madvise", the default of many distributions, nothing else gets them).
// A lent array is written whole right after (the value's bytes), so a
// huge page costs no memory it would not use, and one fault per 2 MiB
// replaces 512. Arrays under 8 MiB are left alone. Best effort: an error
// (no THP in the kernel) changes nothing.
func adviseHuge(b []byte) {
	c := cap(b)
	if c < 8<<20 {
		return
	}
	base := unsafe.Pointer(unsafe.SliceData(b[:1]))
	p := uintptr(base)
	start := (p + hugePage - 1) &^ (hugePage - 1)
	end := (p + uintptr(c)) &^ (hugePage - 1)
	if end <= start {
		return
	}
	_ = syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(base, start-p)), end-start), syscall.MADV_HUGEPAGE)
}
