package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ipcframe/ipcframe/internal/hol"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// Relay mode (-mode relay): the same loads direct and through a relay node
// (docs/relay.md) in one run, and the ratios. The relay node writes
// packets of -relay-buffer bytes (default 64 KiB: it packs many of its
// sources' chunks in one packet, docs/relay.md). It runs in a
// child process (this program with -relay-serve), so that its CPU time and
// peak RSS are its own; the server and the client are embedded. Printed:
//
//   - for each -concurrency, the -size echo load direct and through the
//     relay (the server registered on it as "bench"), one table row each,
//     and the relay/direct ratios of QPS and p50;
//   - one-way messages of -relay-oneway bytes (64 MiB), two outstanding,
//     each acknowledged, direct and through the relay, for -duration each:
//     MB/s and the ratio, and the relay node's CPU time per GB forwarded
//     (getrusage of the child is not available while it runs: /proc's
//     utime+stime) and its peak RSS; and this process's CPU time (client
//     and server) per GB, direct and through the relay, so that the
//     CPU cost of the whole path either way is known: on cores that
//     client, relay and server share, the ratio of the two totals bounds
//     the throughput ratio;
//   - with -relay-floor, a raw TCP stream direct and through a forwarder
//     in the relay node's process that only moves bytes (read/write, and
//     splice(2)), for -duration each: the kernel's floor for a relay on
//     this machine, in the same run (relayfloor.go);
//   - with -relay-stream N, one stream message of N bytes through the
//     relay, the relay node's RSS sampled every second (VmRSS), its peak
//     (VmHWM) and CPU time per GB.
//
// With -json the report (RelayReport) is written as one JSON object.
const ModeRelay = "relay"

// idJoin is the message that registers the sender's connection on the
// relay node under a name.
const idJoin = 4

// Join asks the relay node to register the sender's connection as Name.
type Join struct{ Name string }

// Serde lists Join's fields.
func (m *Join) Serde(v *serde.Visitor) { v.String(&m.Name) }

// relayName is the name the benchmark server registers on the relay.
const relayName = "bench"

// serveRelay runs only a relay node until SIGINT or SIGTERM, printing its
// address as the first line of stdout.
// With floor it also runs the raw forwarder of -relay-floor (relayfloor.go)
// and prints its address on the same line, after a space.
func serveRelay(listen string, o ServiceOptions, relayBuffer int, floor bool, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := ipc.NewProtocol()
	ipc.MustRegister(p, idJoin, func(ctx ipc.Context, m *Join) {
		if err := ctx.Conn().RegisterRelayName(m.Name); err != nil {
			_ = ctx.Conn().CloseWithError(err)
			return
		}
		_ = ctx.Respond(m)
	})
	cfg, err := o.config(p)
	if err != nil {
		return err
	}
	cfg.Listen = listen
	cfg.Relay.Enabled = true
	cfg.BufferSize = relayBuffer
	svc, err := startLargeService(cfg)
	if err != nil {
		return err
	}
	line := svc.Addr().String()
	if floor {
		fwd, closeFwd, err := listenFloor()
		if err != nil {
			stopLargeService(svc)
			return err
		}
		defer closeFwd()
		line += " " + fwd
	}
	fmt.Fprintln(stdout, line)
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}
	<-ctx.Done()
	stopLargeService(svc)
	return nil
}

// RelayOptions are -mode relay's own flags.
type RelayOptions struct {
	Buffer     int    // the relay node's BufferSize (-relay-buffer)
	OneWay     int64  // one-way message size (-relay-oneway)
	Stream     int64  // one stream message of this size, 0: none (-relay-stream)
	CPUProfile string // the relay node's CPU profile (-relay-cpuprofile)
	Floor      bool   // also the raw TCP floor (-relay-floor, relayfloor.go)
	JSON       string // -json
}

// RelayReport is what -mode relay -json writes: one object.
type RelayReport struct {
	Mode        string `json:"mode"` // "relay"
	RelayBuffer int    `json:"relay_buffer"`
	// Echo holds, for each concurrency, the echo load direct and through
	// the relay, measured back to back.
	Echo []RelayEcho `json:"echo"`
	// OneWay is the one-way load direct and through the relay.
	OneWay RelayOneWay `json:"oneway"`
	// Floor is the raw TCP stream direct and through a forwarder in the
	// relay node's process (-relay-floor), if measured.
	Floor *RelayFloor `json:"floor,omitempty"`
	// Stream is the -relay-stream message, if any.
	Stream *RelayStream `json:"stream,omitempty"`
}

// RelayEcho is one concurrency of the echo load, direct and relayed.
type RelayEcho struct {
	Concurrency int     `json:"concurrency"`
	Direct      Result  `json:"direct"`
	Relay       Result  `json:"relay"`
	QPSRatio    float64 `json:"qps_ratio"` // relay / direct
}

// RelayOneWay is the one-way load: messages of Size bytes, two
// outstanding, each acknowledged, for -duration direct then relayed.
type RelayOneWay struct {
	Size       int64   `json:"size"`
	DirectMBps float64 `json:"direct_mb_per_sec"`
	RelayMBps  float64 `json:"relay_mb_per_sec"`
	Ratio      float64 `json:"ratio"` // relay / direct
	// The relay node over the relayed window: its CPU time (user +
	// system) per GB (10^9 bytes) forwarded, and its peak RSS so far.
	RelayCPUPerGB   float64 `json:"relay_cpu_sec_per_gb"`
	RelayPeakRSSKiB int64   `json:"relay_peak_rss_kib"`
	// The client and the server (this process) per GB sent, direct and
	// through the relay: with RelayCPUPerGB, the CPU time the whole path
	// costs per GB either way. On a machine whose cores client, relay and
	// server share, the ratio of the two totals bounds Ratio.
	DirectEndsCPUPerGB float64 `json:"direct_ends_cpu_sec_per_gb"`
	RelayEndsCPUPerGB  float64 `json:"relay_ends_cpu_sec_per_gb"`
}

// RelayStream is one stream message through the relay.
type RelayStream struct {
	Size    int64   `json:"size"`
	Seconds float64 `json:"seconds"`
	MBps    float64 `json:"mb_per_sec"`
	// The relay node: CPU time per GB forwarded, peak RSS over its whole
	// life (VmHWM), and its RSS sampled every second of the stream.
	RelayCPUPerGB   float64     `json:"relay_cpu_sec_per_gb"`
	RelayPeakRSSKiB int64       `json:"relay_peak_rss_kib"`
	RSS             []RSSSample `json:"rss"`
}

// RSSSample is the relay node's resident set at a moment of the stream.
type RSSSample struct {
	Seconds float64 `json:"seconds"`
	KiB     int64   `json:"kib"`
}

// spawnRelay starts this program as a -relay-serve child.
func spawnRelay(o ServiceOptions, ro RelayOptions, stderr io.Writer) (*child, error) {
	args := []string{"-relay-serve", "127.0.0.1:0", "-relay-buffer", strconv.Itoa(ro.Buffer),
		"-buffer", strconv.Itoa(o.BufferSize), "-compress=" + strconv.FormatBool(o.Compress)}
	if ro.CPUProfile != "" {
		args = append(args, "-cpuprofile", ro.CPUProfile)
	}
	if ro.Floor {
		args = append(args, "-relay-floor")
	}
	return spawnChild(stderr, args...)
}

// join registers svc's connection to the relay at raddr as name.
func join(svc *ipc.Service, raddr, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	_, err := ipc.Call[Join, Join](ctx, svc, raddr, &Join{Name: name}, 0)
	return err
}

// runRelay runs relay mode and writes its results to stdout (the text to
// stderr when the JSON goes to stdout).
func runRelay(ctx context.Context, o Options, ro RelayOptions, concs []int, stdout, stderr, progress io.Writer) error {
	if o.Service.TLS {
		return errors.New("-mode relay runs without -tls")
	}
	w := stdout
	if ro.JSON == "-" {
		w = stderr
	}
	relay, err := spawnRelay(o.Service, ro, os.Stderr)
	if err != nil {
		return err
	}
	defer func() { _ = relay.stop() }()
	var fwd string
	relay.addr, fwd = floorAddr(relay.addr)
	if ro.Floor && fwd == "" {
		return errors.New("the relay node did not start the -relay-floor forwarder")
	}
	srv, err := StartServer("127.0.0.1:0", o.Service)
	if err != nil {
		return err
	}
	defer func() { _ = srv.Stop() }()
	if err := join(srv.svc, relay.addr, relayName); err != nil {
		return fmt.Errorf("registering on the relay: %w", err)
	}
	direct := Target{Addr: srv.Addr(), Local: srv}
	relayed := Target{Addr: relay.addr + "/" + relayName, Local: srv}
	pid := relay.cmd.Process.Pid
	rep := RelayReport{Mode: ModeRelay, RelayBuffer: ro.Buffer}

	o.Mode = ModeEcho
	o.Progress = progress
	var results []Result
	for _, c := range concs {
		o.Concurrency = c
		var pair [2]Result
		for i, t := range []Target{direct, relayed} {
			res, err := Run(ctx, t, o)
			if err != nil {
				return fmt.Errorf("echo c=%d via %s: %w", c, t.Addr, err)
			}
			pair[i] = res
		}
		results = append(results, pair[:]...)
		rep.Echo = append(rep.Echo, RelayEcho{Concurrency: c, Direct: pair[0], Relay: pair[1], QPSRatio: ratio(pair[1].QPS, pair[0].QPS)})
		fmt.Fprintf(w, "echo %d B c=%d: relay/direct QPS %.2fx (%.0f / %.0f), p50 %d / %d µs\n",
			o.Size, c, pair[1].QPS/pair[0].QPS, pair[1].QPS, pair[0].QPS, pair[1].P50Us, pair[0].P50Us)
	}
	if err := WriteTable(w, results); err != nil {
		return err
	}

	ccfg, err := o.Service.config(newProtocol(nil))
	if err != nil {
		return err
	}
	client, err := startLargeService(ccfg)
	if err != nil {
		return err
	}
	defer stopLargeService(client)
	ow := &rep.OneWay
	ow.Size = ro.OneWay
	if err := warmOneWay(ctx, client, direct.Addr, ow.Size, o); err != nil {
		return fmt.Errorf("one way direct: %w", err)
	}
	self0, start := processCPU(), time.Now()
	if ow.DirectMBps, err = hol.OneWay(ctx, client, direct.Addr, ow.Size, 2, o.Duration, false); err != nil {
		return fmt.Errorf("one way direct: %w", err)
	}
	ow.DirectEndsCPUPerGB = ratio((processCPU() - self0).Seconds(), ow.DirectMBps*time.Since(start).Seconds()/1e3)
	if err := warmOneWay(ctx, client, relayed.Addr, ow.Size, o); err != nil {
		return fmt.Errorf("one way through the relay: %w", err)
	}
	cpu0, err := childCPU(pid)
	if err != nil {
		return err
	}
	self0, start = processCPU(), time.Now()
	if ow.RelayMBps, err = hol.OneWay(ctx, client, relayed.Addr, ow.Size, 2, o.Duration, false); err != nil {
		return fmt.Errorf("one way through the relay: %w", err)
	}
	elapsed := time.Since(start)
	self1 := processCPU()
	cpu1, err := childCPU(pid)
	if err != nil {
		return err
	}
	gb := ow.RelayMBps * elapsed.Seconds() / 1e3
	ow.Ratio = ratio(ow.RelayMBps, ow.DirectMBps)
	ow.RelayCPUPerGB = ratio((cpu1 - cpu0).Seconds(), gb)
	ow.RelayEndsCPUPerGB = ratio((self1 - self0).Seconds(), gb)
	ow.RelayPeakRSSKiB = procKiB(pid, "VmHWM:")
	fmt.Fprintf(w, "%d MiB one way: relay %.0f MB/s, direct %.0f MB/s: %.2fx\n", ow.Size>>20, ow.RelayMBps, ow.DirectMBps, ow.Ratio)
	fmt.Fprintf(w, "relay node: %.2f CPU s per GB forwarded (%.1f GB in %.1f s, %.2f CPU s), peak RSS %d KiB\n",
		ow.RelayCPUPerGB, gb, elapsed.Seconds(), (cpu1 - cpu0).Seconds(), ow.RelayPeakRSSKiB)
	fmt.Fprintf(w, "CPU s per GB, client+server direct %.2f; through the relay client+server %.2f + relay %.2f = %.2f (direct/relayed %.2fx)\n",
		ow.DirectEndsCPUPerGB, ow.RelayEndsCPUPerGB, ow.RelayCPUPerGB, ow.RelayEndsCPUPerGB+ow.RelayCPUPerGB,
		ratio(ow.DirectEndsCPUPerGB, ow.RelayEndsCPUPerGB+ow.RelayCPUPerGB))

	if ro.Floor {
		if rep.Floor, err = runFloor(ctx, w, fwd, pid, o.Duration); err != nil {
			return err
		}
	}
	if ro.Stream > 0 {
		st, err := relayStream(ctx, client, relayed.Addr, pid, ro.Stream)
		if err != nil {
			return err
		}
		rep.Stream = st
		fmt.Fprintf(w, "%d MiB stream through the relay: %.0f MB/s, relay %.2f CPU s per GB, RSS %d KiB at most in %d samples (VmHWM %d KiB)\n",
			st.Size>>20, st.MBps, st.RelayCPUPerGB, maxRSS(st.RSS), len(st.RSS), st.RelayPeakRSSKiB)
	}
	if ro.JSON == "" {
		return nil
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if ro.JSON == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(ro.JSON, b, 0o644)
}

// relayStream sends one stream message of size bytes to addr (through the
// relay node pid) and samples the node's RSS every second meanwhile.
func relayStream(ctx context.Context, client *ipc.Service, addr string, pid int, size int64) (*RelayStream, error) {
	st := &RelayStream{Size: size}
	cpu0, err := childCPU(pid)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- hol.SendLarge(ctx, client, addr, size, nil, true) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err = <-done:
		case now := <-tick.C:
			st.RSS = append(st.RSS, RSSSample{Seconds: now.Sub(start).Seconds(), KiB: procKiB(pid, "VmRSS:")})
			continue
		}
		break
	}
	if err != nil {
		return nil, fmt.Errorf("stream through the relay: %w", err)
	}
	cpu1, err := childCPU(pid)
	if err != nil {
		return nil, err
	}
	st.Seconds = time.Since(start).Seconds()
	st.MBps = float64(size) / st.Seconds / 1e6
	st.RelayCPUPerGB = (cpu1 - cpu0).Seconds() / (float64(size) / 1e9)
	st.RelayPeakRSSKiB = procKiB(pid, "VmHWM:")
	return st, nil
}

// ratio is a / b, or 0 when b is 0 (nothing completed in the window: JSON
// has no NaN or infinity).
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// maxRSS returns the largest sample.
func maxRSS(s []RSSSample) int64 {
	var m int64
	for _, x := range s {
		m = max(m, x.KiB)
	}
	return m
}

// procKiB returns a "kB" field (VmRSS:, VmHWM:) of /proc/pid/status, or -1.
func procKiB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// byteSize is a flag of a size in bytes, with an optional K, M or G
// suffix (powers of 1024).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G"):
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a size in bytes (K, M, G suffixes), got %q", s)
	}
	*b = byteSize(n * mult)
	return nil
}

// childCPU returns the user+system CPU time of process pid so far, from
// /proc/pid/stat (fields 14 and 15, in clock ticks of 1/100 s).
func childCPU(pid int) (time.Duration, error) {
	v, err := procStat(pid, 14, 15)
	if err != nil {
		return 0, err
	}
	return time.Duration(v[0]+v[1]) * 10 * time.Millisecond, nil
}

// warmOneWay sends one message of the leg's one-way load (size bytes) to
// addr and waits for it, then runs the load (two in flight) for the rest of
// o.Warmup, unmeasured, as every window of the command has a warm-up
// ("-warmup"): the window then measures the flow, not the dials and the
// relay's first route (a 400 ms window under -race once completed no
// relayed message at all).
func warmOneWay(ctx context.Context, client *ipc.Service, addr string, size int64, o Options) error {
	if o.Warmup <= 0 {
		return nil
	}
	start := time.Now()
	payload := make([]byte, size)
	_, _ = hol.NewPatternReader(size).Read(payload)
	if err := hol.SendLarge(ctx, client, addr, size, payload, false); err != nil {
		return err
	}
	if rest := o.Warmup - time.Since(start); rest > 0 {
		_, err := hol.OneWay(ctx, client, addr, size, 2, rest, false)
		return err
	}
	return nil
}
