package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/schollz/progressbar/v3"
)

// Load modes.
const (
	ModeEcho   = "echo"   // requests echoed by the server; round-trip latency
	ModeOneway = "oneway" // one-way messages; server-side receive throughput
)

// Run phases, read by every completion callback.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// maxLatencyUs is the largest latency the histogram tracks (60 s); larger
// values are clamped.
const maxLatencyUs = 60_000_000

// Options describe one load run.
type Options struct {
	Mode        string        // ModeEcho or ModeOneway
	Size        int           // payload bytes per message
	Concurrency int           // outstanding requests (messages in oneway mode)
	Conns       int           // pool MaxActiveConnections
	Duration    time.Duration // measured window
	Warmup      time.Duration // unmeasured time before the window
	Service     ServiceOptions
	// Progress receives a live, time-based progress bar; nil disables it.
	Progress io.Writer
	// DrainTimeout bounds the wait for outstanding completions after the
	// window; 0 means 10 s plus the time to move Concurrency messages at
	// 50 MB/s.
	DrainTimeout time.Duration
}

// Target is the server a run loads: its address and, for an embedded
// server, direct access to its counters (otherwise they are asked for with
// a Stats request).
type Target struct {
	Addr  string
	Local *Server // nil for a server in another process
}

// runner is the state of one run, shared by its slots.
type runner struct {
	o      Options
	svc    *ipc.Service
	addr   string
	phase  atomic.Int32
	active atomic.Int64  // slots still issuing or waiting for a completion
	idle   chan struct{} // closed when active reaches 0 after the stop

	errors   atomic.Int64
	firstErr atomic.Pointer[error]

	shards []*shard
}

// shard is one histogram, shared by the slots i with i%len(shards) == k:
// h for the whole window, win for the timeline's current interval
// (timeline.go).
type shard struct {
	mu  sync.Mutex
	h   *hdrhistogram.Histogram
	win *hdrhistogram.Histogram
	_   [64]byte
}

// slot is one closed-loop sender: it keeps one request outstanding and
// issues the next one from the completion callback of the previous.
type slot struct {
	r      *runner
	sh     *shard
	echo   *Echo // reused request (echo mode)
	sink   *Sink // reused message (oneway mode)
	echoCB func(req, resp *Echo, err error)
	sinkCB func(err error)
	start  time.Time
	// total counts completions (any phase), measured those of the window.
	total, measured atomic.Int64
	_               [64]byte
}

var errBadEcho = errors.New("echo response differs from the request")

func (r *runner) fail(err error) {
	r.errors.Add(1)
	r.firstErr.CompareAndSwap(nil, &err)
}

// complete accounts one completion of s, started at s.start.
func (s *slot) complete(err error) {
	now := time.Now()
	ph := s.r.phase.Load()
	s.total.Add(1)
	if err != nil {
		s.r.fail(err)
	} else if ph == phaseMeasure {
		s.measured.Add(1)
		us := now.Sub(s.start).Microseconds()
		us = min(max(us, 0), maxLatencyUs)
		s.sh.mu.Lock()
		_ = s.sh.h.RecordValue(us)
		_ = s.sh.win.RecordValue(us)
		s.sh.mu.Unlock()
	}
	s.issue()
}

func (s *slot) onEcho(req, resp *Echo, err error) {
	if err == nil && (resp == nil || !bytes.Equal(resp.Data, req.Data)) {
		err = errBadEcho
	}
	s.complete(err)
}

func (s *slot) onSent(err error) { s.complete(err) }

// issue sends the slot's next message unless the run is stopping. A send
// rejected at once (pool full, ...) counts as an error and is retried 1 ms
// later from a goroutine: the callers may be event loops, which must not
// sleep.
func (s *slot) issue() {
	r := s.r
	if r.phase.Load() >= phaseStop {
		if r.active.Add(-1) == 0 {
			close(r.idle)
		}
		return
	}
	s.start = time.Now()
	var err error
	if s.echo != nil {
		err = ipc.SendRequest(r.svc, r.addr, s.echo, 0, s.echoCB)
	} else {
		err = r.svc.Send(r.addr, s.sink, 0, s.sinkCB)
	}
	if err != nil {
		r.fail(err)
		time.AfterFunc(time.Millisecond, s.issue)
	}
}

// Run runs one load against t and returns its result. ctx ends the run
// early (the result then covers the shorter window).
func Run(ctx context.Context, t Target, o Options) (res Result, err error) {
	if o.Concurrency < 1 || o.Size < 0 || o.Duration <= 0 || o.Warmup < 0 {
		return res, fmt.Errorf("bad options: concurrency %d, size %d, duration %v, warmup %v",
			o.Concurrency, o.Size, o.Duration, o.Warmup)
	}
	if o.Mode != ModeEcho && o.Mode != ModeOneway {
		return res, fmt.Errorf("unknown mode %q (want echo or oneway)", o.Mode)
	}
	cfg, err := o.Service.config(newProtocol(nil))
	if err != nil {
		return res, err
	}
	cfg.MaxActiveConnections = max(o.Conns, 1)
	cfg.MaxPendingConnections = max(o.Conns, 1)
	cfg.MaxQueuedMessages = max(ipc.DefaultMaxQueuedMessages, o.Concurrency)
	svc, err := ipc.NewService(cfg)
	if err != nil {
		return res, err
	}
	if err := svc.Start(); err != nil {
		return res, err
	}
	stalled := false
	defer func() {
		// Stop waits for accepted messages; after a stall they will not
		// complete, so do not wait long.
		timeout := stopTimeout
		if stalled {
			timeout = time.Second
		}
		sctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if e := svc.Stop(sctx); e != nil && err == nil && !stalled {
			err = fmt.Errorf("client Stop: %w", e)
		}
	}()

	r := &runner{o: o, svc: svc, addr: t.Addr, idle: make(chan struct{})}
	nShards := min(o.Concurrency, max(runtime.GOMAXPROCS(0), 1))
	for range nShards {
		r.shards = append(r.shards, &shard{h: hdrhistogram.New(1, maxLatencyUs, 3), win: hdrhistogram.New(1, maxLatencyUs, 3)})
	}
	payload := make([]byte, o.Size)
	rng := rand.NewChaCha8([32]byte{'i', 'p', 'c'})
	_, _ = rng.Read(payload)
	slots := make([]*slot, o.Concurrency)
	for i := range slots {
		s := &slot{r: r, sh: r.shards[i%nShards]}
		if o.Mode == ModeEcho {
			s.echo = &Echo{Data: payload}
			s.echoCB = s.onEcho
		} else {
			s.sink = &Sink{Data: payload}
			s.sinkCB = s.onSent
		}
		slots[i] = s
	}
	stats := func() (uint64, uint64, error) {
		if t.Local != nil {
			b, n := t.Local.Stats()
			return b, n, nil
		}
		return remoteStats(svc, t.Addr)
	}
	completions := func() (n int64) {
		for _, s := range slots {
			n += s.total.Load()
		}
		return n
	}
	measured := func() (n int64) {
		for _, s := range slots {
			n += s.measured.Load()
		}
		return n
	}

	begin := time.Now()
	prog := startProgress(o, begin, completions)
	r.active.Store(int64(len(slots)))
	for _, s := range slots {
		s.issue()
	}

	sleep(ctx, o.Warmup)
	var m0, m1 runtime.MemStats
	var b0, b1, n0, n1 uint64
	if o.Mode == ModeOneway {
		if b0, n0, err = stats(); err != nil {
			r.phase.Store(phaseStop)
			prog.stop()
			return res, fmt.Errorf("server stats: %w", err)
		}
	}
	runtime.ReadMemStats(&m0)
	cpu0 := processCPU()
	t0 := time.Now()
	r.phase.Store(phaseMeasure)
	prog.measuring(t0)

	timeline := r.measure(ctx, o.Duration, measured)
	r.phase.Store(phaseStop)
	t1 := time.Now()
	cpu1 := processCPU()
	runtime.ReadMemStats(&m1)
	var statsErr error
	if o.Mode == ModeOneway {
		b1, n1, statsErr = stats()
	}
	prog.stop()

	drain := o.DrainTimeout
	if drain == 0 {
		drain = 10*time.Second + time.Duration(float64(o.Concurrency)*float64(o.Size)/50e6*float64(time.Second))
	}
	select {
	case <-r.idle:
	case <-time.After(drain):
		stalled = true
	}

	res = Result{
		Mode:        o.Mode,
		Size:        o.Size,
		Concurrency: o.Concurrency,
		Conns:       cfg.MaxActiveConnections,
		BufferSize:  o.Service.BufferSize,
		Compress:    o.Service.Compress,
		TLS:         o.Service.TLS,
		Seconds:     t1.Sub(t0).Seconds(),
		Errors:      r.errors.Load(),
		Embedded:    t.Local != nil,
	}
	if res.BufferSize == 0 {
		res.BufferSize = ipc.DefaultBufferSize
	}
	h := hdrhistogram.New(1, maxLatencyUs, 3)
	for _, s := range slots {
		res.Requests += s.measured.Load()
	}
	for _, sh := range r.shards {
		sh.mu.Lock()
		h.Merge(sh.h)
		sh.mu.Unlock()
	}
	res.setLatency(h)
	res.Timeline, res.Histogram = timeline, buckets(h)
	if res.Seconds > 0 {
		res.QPS = float64(res.Requests) / res.Seconds
		res.MBps = res.QPS * float64(o.Size) / 1e6
	}
	if res.Requests > 0 {
		res.AllocsPerReq = float64(m1.Mallocs-m0.Mallocs) / float64(res.Requests)
		res.CPUPerReqUs = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(res.Requests)
	}
	if o.Mode == ModeOneway {
		res.ServerBytes = b1 - b0
		res.ServerMsgs = n1 - n0
		if res.Seconds > 0 {
			res.MBps = float64(res.ServerBytes) / res.Seconds / 1e6
		}
		if statsErr != nil {
			r.fail(fmt.Errorf("server stats: %w", statsErr))
			res.Errors = r.errors.Load()
		}
	}
	if p := r.firstErr.Load(); p != nil {
		res.FirstError = (*p).Error()
	}
	if stalled {
		res.Stalled = r.active.Load()
		return res, fmt.Errorf("stall: %d of %d outstanding %s did not complete within %v after the window",
			res.Stalled, o.Concurrency, unit(o.Mode), drain)
	}
	return res, nil
}

// remoteStats asks the server at addr for its receive counters.
func remoteStats(svc *ipc.Service, addr string) (uint64, uint64, error) {
	type reply struct {
		m   *Stats
		err error
	}
	ch := make(chan reply, 1)
	err := ipc.SendRequest(svc, addr, &Stats{}, 0, func(_, resp *Stats, err error) {
		ch <- reply{resp, err}
	})
	if err != nil {
		return 0, 0, err
	}
	select {
	case rp := <-ch:
		if rp.err != nil {
			return 0, 0, rp.err
		}
		return rp.m.Bytes, rp.m.Msgs, nil
	case <-time.After(stopTimeout):
		return 0, 0, errors.New("no Stats response within 10s")
	}
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func unit(mode string) string {
	if mode == ModeOneway {
		return "messages"
	}
	return "requests"
}

// progress draws a time-based progress bar from a ticker goroutine.
type progress struct {
	done    chan struct{}
	wg      sync.WaitGroup
	measure atomic.Pointer[time.Time]
}

func startProgress(o Options, begin time.Time, completions func() int64) *progress {
	p := &progress{done: make(chan struct{})}
	if o.Progress == nil {
		return p
	}
	total := (o.Warmup + o.Duration).Milliseconds()
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(o.Progress),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionSetDescription(fmt.Sprintf("%s c=%-5d warmup   ", o.Mode, o.Concurrency)),
	)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		lastN, lastT := int64(0), begin
		for {
			select {
			case <-p.done:
				_ = bar.Finish()
				return
			case now := <-tick.C:
				n := completions()
				rate := float64(n-lastN) / now.Sub(lastT).Seconds()
				lastN, lastT = n, now
				what := "warmup "
				if t0 := p.measure.Load(); t0 != nil {
					what = fmt.Sprintf("%4.1fs", now.Sub(*t0).Seconds())
				}
				bar.Describe(fmt.Sprintf("%s c=%-5d %s %10.0f %s/s", o.Mode, o.Concurrency, what, rate, rateUnit(o.Mode)))
				_ = bar.Set64(min(now.Sub(begin).Milliseconds(), total))
			}
		}
	}()
	return p
}

func (p *progress) measuring(t0 time.Time) { p.measure.Store(&t0) }

func (p *progress) stop() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	p.wg.Wait()
}

func rateUnit(mode string) string {
	if mode == ModeOneway {
		return "msg"
	}
	return "req"
}
