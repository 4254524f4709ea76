package buffers

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// freshMapping returns n bytes of anonymous memory the process has never
// touched (no page present), unmapped at the test's end.
func freshMapping(t *testing.T, n int) []byte {
	t.Helper()
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Munmap(b) })
	return b
}

// resident returns how many of the pages of b (page-aligned) are present.
func resident(t *testing.T, b []byte) int {
	t.Helper()
	vec := make([]byte, len(b)/os.Getpagesize())
	require.NoError(t, mincore(b, vec))
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// waitPrefaults makes Prefault's jobs report their ends on the returned
// channel for the rest of the test.
func waitPrefaults(t *testing.T) <-chan struct{} {
	t.Helper()
	done := make(chan struct{}, prefaultJobs)
	prefaultDone = func() { done <- struct{}{} }
	t.Cleanup(func() { prefaultDone = nil })
	return done
}

// await waits for one job's end.
func await(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("prefault job did not end")
	}
}

// TestPrefaultPopulates: Prefault makes every page of an untouched array
// present, counts them, and leaves the bytes zero as the kernel maps them.
func TestPrefaultPopulates(t *testing.T) {
	done := waitPrefaults(t)
	pg := os.Getpagesize()
	size := 2048 * pg // many chunks
	b := freshMapping(t, size)
	require.Zero(t, resident(t, b), "a fresh mapping has no page present")
	c0 := PrefaultStats()
	require.True(t, Prefault(b[:0]), "an array of 2,048 pages is prefaulted, from its capacity")
	await(t, done)
	require.False(t, prefaultOff.Load(), "this kernel (5.14 or later) populates pages")
	require.Equal(t, size/pg, resident(t, b), "every page present after the job")
	c := PrefaultStats()
	require.EqualValues(t, 1, c.Asked-c0.Asked)
	require.EqualValues(t, 1, c.Arrays-c0.Arrays)
	require.EqualValues(t, size/pg, c.Pages-c0.Pages)
	for i, c := range b {
		if c != 0 {
			t.Fatalf("byte %d changed to %d", i, c)
		}
	}
}

// TestPrefaultSkipsPresent: pages already present are left alone (not
// counted, their bytes kept), and a slice that does not start on a page
// populates its whole pages only.
func TestPrefaultSkipsPresent(t *testing.T) {
	done := waitPrefaults(t)
	pg := os.Getpagesize()
	size := 1536 * pg
	m := freshMapping(t, size)
	for i := 0; i < size/2; i += pg {
		m[i] = byte(i/pg) | 1 // the first half present, with bytes of its own
	}
	pages0 := PrefaultStats().Pages
	require.True(t, Prefault(m[100:size-100:size-100])) // the first and last pages are partial
	await(t, done)
	require.EqualValues(t, size/2/pg-1, PrefaultStats().Pages-pages0, "the missing whole pages only")
	require.Equal(t, size/pg-1, resident(t, m[:size-pg]), "all but the last page present")
	for i := 0; i < size/2; i += pg {
		require.Equal(t, byte(i/pg)|1, m[i], "byte %d", i)
	}
}

// TestPrefaultKeepsBytesWritten: bytes written into the array while the
// job runs, by the program and by the kernel (a read from a pipe, as the
// loop's readv writes a value), stay as written.
func TestPrefaultKeepsBytesWritten(t *testing.T) {
	done := waitPrefaults(t)
	const size = 4 << 20
	b := freshMapping(t, size)
	var p [2]int
	require.NoError(t, unix.Pipe2(p[:], unix.O_CLOEXEC))
	t.Cleanup(func() { _ = unix.Close(p[0]); _ = unix.Close(p[1]) })
	src := make([]byte, 64<<10)
	for i := range src {
		src[i] = byte(i*7) | 1
	}
	require.True(t, Prefault(b))
	for off := 0; off < size; off += 2 * len(src) {
		_, err := unix.Write(p[1], src)
		require.NoError(t, err)
		_, err = io.ReadFull(fdReader(p[0]), b[off:off+len(src)]) // the kernel writes
		require.NoError(t, err)
		copy(b[off+len(src):], src) // the program writes
	}
	await(t, done)
	for off := 0; off < size; off += len(src) {
		require.Equal(t, src, b[off:off+len(src)], "bytes at %d", off)
	}
}

// fdReader reads a file descriptor.
type fdReader int

func (r fdReader) Read(b []byte) (int, error) { return unix.Read(int(r), b) }

// TestPrefaultBounds: no job for a small array, nor beyond prefaultJobs at
// once.
func TestPrefaultBounds(t *testing.T) {
	done := waitPrefaults(t)
	c0 := PrefaultStats()
	require.False(t, Prefault(make([]byte, PrefaultMin-1)))
	require.Equal(t, c0, PrefaultStats(), "a small array is not counted")
	prefaultRunning.Add(prefaultJobs)
	require.False(t, Prefault(freshMapping(t, PrefaultMin)), "all jobs taken")
	prefaultRunning.Add(-prefaultJobs)
	c := PrefaultStats()
	require.EqualValues(t, 1, c.Asked-c0.Asked, "asked while all jobs were taken")
	require.Equal(t, c0.Arrays, c.Arrays, "no job started")
	require.True(t, Prefault(freshMapping(t, PrefaultMin)))
	await(t, done)
	c = PrefaultStats()
	require.EqualValues(t, 2, c.Asked-c0.Asked)
	require.EqualValues(t, 1, c.Arrays-c0.Arrays)
}
