package buffers

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkFreshPages64MiB prices the faults of 64 MiB of memory new to
// the process (a fresh mapping per op, as a lent array's released or newly
// mapped pages are) when a kernel copy writes it, as the loop's readv
// writes a value: loop takes the faults in the copy, as without Prefault;
// prefault runs Prefault's work first (on the benchmark's goroutine, to
// time it) and reports its share (prefault-ms/op) and the copy's after it
// (copy-ms/op); populate does MADV_POPULATE_WRITE alone in its place, to
// show what the kernel's read of each page adds on hosts that map the
// kernel's accesses apart (the project's VMs: the copy still pays).
func BenchmarkFreshPages64MiB(b *testing.B) {
	const size = 64 << 20
	zero, err := os.Open("/dev/zero")
	if err != nil {
		b.Fatal(err)
	}
	defer zero.Close()
	copyIn := func(m []byte) {
		for off := 0; off < size; off += 256 << 10 {
			if _, err := zero.Read(m[off : off+256<<10]); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, mode := range []string{"loop", "populate", "prefault"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(size)
			var pre, cp time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				m, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				t0 := time.Now()
				switch mode {
				case "prefault":
					prefault(m)
				case "populate":
					if err := unix.Madvise(m, unix.MADV_POPULATE_WRITE); err != nil {
						b.Fatal(err)
					}
				}
				t1 := time.Now()
				copyIn(m)
				pre, cp = pre+t1.Sub(t0), cp+time.Since(t1)
				b.StopTimer()
				_ = unix.Munmap(m)
				b.StartTimer()
			}
			b.ReportMetric(float64(pre.Microseconds())/1e3/float64(b.N), "prefault-ms/op")
			b.ReportMetric(float64(cp.Microseconds())/1e3/float64(b.N), "copy-ms/op")
		})
	}
}
