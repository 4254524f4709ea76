package buffers

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// prefaultChunkPages is how many pages one mincore call looks at and one
// writev touches: 256 KiB of 4 KiB pages. Small, so that no system call of
// the goroutine lasts long (about 6.5 µs a missing page on the project's
// VMs, under 0.5 ms a chunk): a goroutine in a long system call keeps its
// P until sysmon takes it back, which can be milliseconds, and with
// GOMAXPROCS 2 that delays the loops and the application's goroutines
// (4 MiB chunks raised the maximum latency of small calls beside 16 MiB
// values: docs/benchmarks.md, "The plain 64 MiB message and its page
// faults, fourteenth session").
const prefaultChunkPages = 64

// prefaultState is a job's scratch: mincore's vector, the touch's iovecs
// (one per page of a chunk) and the buffer the pipe is drained into.
// Pooled: a job needs about 1 KiB.
type prefaultState struct {
	vec [prefaultChunkPages]byte
	iov [prefaultChunkPages]unix.Iovec
	buf [prefaultChunkPages]byte
}

var prefaultStates = sync.Pool{New: func() any { return new(prefaultState) }}

// prefault populates b's missing pages and has the kernel read one byte of
// each (see Prefault), a chunk at a time from the front, the order in
// which the value's bytes arrive.
func prefault(b []byte) {
	page := os.Getpagesize()
	// The whole pages of b: a large array is page-aligned, but nothing
	// here depends on it.
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & uintptr(page-1))
	if off >= len(b) {
		return
	}
	whole := b[off : off+(len(b)-off)&^(page-1)]
	if len(whole) == 0 {
		return
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return
	}
	st := prefaultStates.Get().(*prefaultState)
	chunk := prefaultChunkPages * page
	for at := 0; at < len(whole); at += chunk {
		if !prefaultChunk(st, whole[at:min(at+chunk, len(whole))], page, p) {
			break
		}
	}
	prefaultStates.Put(st)
	_ = unix.Close(p[0])
	_ = unix.Close(p[1])
	runtime.KeepAlive(b)
}

// prefaultChunk prefaults c (page-aligned, whole pages, at most
// prefaultChunkPages) and reports whether to go on.
func prefaultChunk(st *prefaultState, c []byte, page int, p [2]int) bool {
	pages := len(c) / page
	if mincore(c, st.vec[:pages]) != nil {
		return false
	}
	touch := 0
	for i := 0; i < pages; {
		if st.vec[i]&1 != 0 {
			i++
			continue
		}
		j := i + 1
		for j < pages && st.vec[j]&1 == 0 {
			j++
		}
		if err := unix.Madvise(c[i*page:j*page], unix.MADV_POPULATE_WRITE); err != nil {
			if errors.Is(err, unix.EINVAL) {
				prefaultOff.Store(true) // no MADV_POPULATE_WRITE: before Linux 5.14
			}
			return false
		}
		for ; i < j; i++ {
			st.iov[touch].Base = &c[i*page]
			st.iov[touch].SetLen(1)
			touch++
		}
	}
	if touch == 0 {
		return true
	}
	prefaultPages.Add(uint64(touch))
	// The kernel reads one byte of each populated page into the pipe,
	// which is then drained (prefaultChunkPages bytes at most: within its
	// buffer).
	w, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(p[1]), uintptr(unsafe.Pointer(&st.iov[0])), uintptr(touch))
	clear(st.iov[:touch]) // the pooled state must not keep the array alive
	if e != 0 {
		return false
	}
	for got := uintptr(0); got < w; {
		r, _, e := unix.Syscall(unix.SYS_READ, uintptr(p[0]), uintptr(unsafe.Pointer(&st.buf[0])), w-got)
		if e != 0 || r == 0 {
			return false
		}
		got += r
	}
	return true
}

// mincore fills vec with one byte per page of b (page-aligned, whole
// pages), bit 0 set where the page is present.
func mincore(b, vec []byte) error {
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return e
	}
	return nil
}
