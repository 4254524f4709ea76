// Package heappeak samples the Go heap in use while a test runs, for
// assertions that a transfer stays within a memory bound.
package heappeak

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Sampler records the highest runtime.MemStats.HeapInuse seen between Start
// and Stop, on a goroutine of its own.
type Sampler struct {
	base uint64        // immutable: HeapInuse after the GC in Start
	peak atomic.Uint64 // written by the sampling goroutine
	stop chan struct{}
	done chan struct{}
}

// Start runs a garbage collection, takes the heap in use as the baseline
// and samples it every interval until Stop.
func Start(interval time.Duration) *Sampler {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := &Sampler{base: ms.HeapInuse, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run(interval)
	return s
}

func (s *Sampler) run(interval time.Duration) {
	defer close(s.done)
	var ms runtime.MemStats
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > s.peak.Load() {
			s.peak.Store(ms.HeapInuse)
		}
		select {
		case <-s.stop:
			return
		case <-tk.C:
		}
	}
}

// Stop ends the sampling and returns the peak growth over the baseline in
// bytes (negative when the heap only shrank). Call it once.
func (s *Sampler) Stop() int64 {
	close(s.stop)
	<-s.done
	return int64(s.peak.Load()) - int64(s.base)
}
